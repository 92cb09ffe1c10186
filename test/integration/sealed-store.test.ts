/**
 * The sealed embedded store (issue 11 items 2 and 8): what an attacker on the machine tried against
 * s3rver and dynalite is refused with one line; devices get exactly what their presigned URL names;
 * the CLI's credentials work; the data dir is private; leftovers of a killed publish are removed.
 */

import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootId, processStartTime } from '#agent/proc.ts';
import { Table } from '#functions/dynamo.ts';
import { Presigner } from '#functions/presign.ts';
import { LOCAL_BUCKET, LOCAL_REGION, startLocalCloud } from '#local/cloud.ts';
import { checkin, seedUpdate, signS3Request, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { until } from '#test/support/wait.ts';

const quiet = { info() {}, warn() {}, error() {} };
const forged = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let cloud: TestCloud;
let imageA: Buffer;
let urlA: string;
let keyB: string;

async function refusedInOneLine(res: Response): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBe(403);
  expect(text.trimEnd().split('\n')).toHaveLength(1);
  return text;
}

beforeAll(async () => {
  cloud = await startTestCloud();
  imageA = Buffer.from('image of product a '.repeat(100));
  await seedUpdate(cloud, { product: 'a', version: '1.1.0' }, imageA);
  const b = await seedUpdate(cloud, { product: 'b', version: '1.1.0' }, Buffer.from('image of product b'));
  keyB = b.key;
  const answer = await checkin(cloud, { id: 'dev-1', version: '1.0.0', product: 'a' }, await tokenFor('a'));
  urlA = String(answer.json.url);
});

async function tokenFor(product: string): Promise<string> {
  const { createToken } = await import('#functions/tokens.ts');
  return (await createToken(cloud.table, { product })).token;
}

afterAll(() => cloud?.dispose());

describe('embedded S3', () => {
  it('refuses listing buckets and objects, reads, overwrites and deletes without credentials', async () => {
    const object = `${cloud.s3Url}/${LOCAL_BUCKET}/${keyB}`;
    await refusedInOneLine(await fetch(`${cloud.s3Url}/`));
    await refusedInOneLine(await fetch(`${cloud.s3Url}/${LOCAL_BUCKET}?list-type=2`));
    await refusedInOneLine(await fetch(object));
    await refusedInOneLine(await fetch(object, { method: 'PUT', body: 'evil' }));
    await refusedInOneLine(await fetch(object, { method: 'DELETE' }));
    // s3rver's built-in key is not a credential here.
    const headers = signS3Request('PUT', object, Buffer.from('evil'), forged);
    await refusedInOneLine(await fetch(object, { method: 'PUT', body: 'evil', headers }));
    const preflight = await fetch(object, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    await refusedInOneLine(preflight);
    // Still the original.
    const signed = signS3Request('GET', object, Buffer.alloc(0), cloud.file.credentials);
    const still = await fetch(object, { headers: signed });
    expect(await still.text()).toBe('image of product b');
  });

  it('serves a presigned URL exactly: GET, HEAD and Range work; another path, method or an expired URL do not', async () => {
    const whole = await fetch(urlA);
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(imageA);
    const head = await fetch(urlA, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const range = await fetch(urlA, { headers: { range: 'bytes=100-' } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer())).toEqual(imageA.subarray(100));

    const moved = new URL(urlA);
    moved.pathname = `/${LOCAL_BUCKET}/${keyB}`;
    const text = await refusedInOneLine(await fetch(moved));
    expect(text).toMatch(/signature does not match/);
    await refusedInOneLine(await fetch(urlA, { method: 'PUT', body: 'evil' }));
    await refusedInOneLine(await fetch(urlA, { method: 'DELETE' }));

    const presigner = new Presigner(
      { region: LOCAL_REGION, bucket: LOCAL_BUCKET, endpoint: cloud.s3Url, forcePathStyle: true },
      () => cloud.file.credentials,
    );
    const expired = presigner.presignGet(keyB, 60, Date.now() - 120_000);
    expect(await refusedInOneLine(await fetch(expired))).toMatch(/expired/);
    const forgedUrl = new Presigner(
      { region: LOCAL_REGION, bucket: LOCAL_BUCKET, endpoint: cloud.s3Url, forcePathStyle: true },
      () => forged,
    ).presignGet(keyB, 60);
    await refusedInOneLine(await fetch(forgedUrl));
  });

  it('removes parts of multipart uploads a killed publish left behind when it starts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'updraft-sealed-'));
    try {
      let local = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
      const s3 = new S3Client({
        region: LOCAL_REGION,
        endpoint: local.file.s3Endpoint,
        forcePathStyle: true,
        credentials: local.file.credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
      const Key = 'images/demo/9.9.9/big.bin';
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: LOCAL_BUCKET, Key }));
      await s3.send(
        new UploadPartCommand({
          Bucket: LOCAL_BUCKET,
          Key,
          UploadId,
          PartNumber: 1,
          Body: Buffer.alloc(1024),
        }),
      );
      s3.destroy();
      const uploads = join(dataDir, 's3', LOCAL_BUCKET, '._S3rver_uploads');
      expect(readdirSync(uploads)).toEqual([UploadId]);
      await local.stop();
      local = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
      expect(existsSync(join(uploads, String(UploadId)))).toBe(false);
      await local.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('embedded DynamoDB', () => {
  const target = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.Scan' };
  const body = JSON.stringify({ TableName: 'updraft' });

  it('refuses unsigned and wrongly signed requests and CORS, and serves the local credentials', async () => {
    const url = cloud.file.dynamoEndpoint;
    await refusedInOneLine(await fetch(url, { method: 'POST', headers: target, body }));
    const wrong = `AWS4-HMAC-SHA256 Credential=${cloud.file.credentials.accessKeyId}/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
    const headers = { ...target, authorization: wrong, 'x-amz-date': '20240101T000000Z' };
    await refusedInOneLine(await fetch(url, { method: 'POST', headers, body }));
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    await refusedInOneLine(preflight);

    const intruder = new Table({
      tableName: 'updraft',
      region: LOCAL_REGION,
      endpoint: url,
      credentials: forged,
    });
    await expect(intruder.get({ pk: 'x', sk: 'y' })).rejects.toThrow(/unknown access key/);
    intruder.client.destroy();
    const owner = new Table({ ...cloud.file, endpoint: url });
    expect(await owner.get({ pk: 'x', sk: 'y' })).toBeUndefined();
    owner.client.destroy();
  });

  it('refuses a stranger before reading the body, so no one without the credentials fills its memory', async () => {
    const { port } = new URL(cloud.file.dynamoEndpoint);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => {});
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    await once(socket, 'connect');
    const auth = `AWS4-HMAC-SHA256 Credential=${forged.accessKeyId}/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
    // Headers only: the 16 MiB body the request announces never comes.
    socket.write(
      `POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Amz-Date: 20240101T000000Z\r\n` +
        `Content-Length: ${16 * 1024 * 1024}\r\n\r\n`,
    );
    try {
      await until(() => answer.includes('\r\n\r\n'), 3000, 'an answer before the body was sent');
      expect(answer).toMatch(/^HTTP\/1\.1 403 .*unknown access key/s);
    } finally {
      socket.destroy();
    }
  });
});

describe('data dir', () => {
  it('is private: 0700 dir, 0600 files, also when an earlier version left it readable', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'updraft-sealed-')), 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'dev-token'), 'old-token\n', { mode: 0o644 });
    const local = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      for (const name of ['cloud.json', 'credentials.json', 'dev-token', 'lock'])
        expect([name, statSync(join(dataDir, name)).mode & 0o777]).toEqual([name, 0o600]);
      const file = JSON.parse(readFileSync(join(dataDir, 'cloud.json'), 'utf8')) as typeof local.file;
      expect(file.credentials).toEqual(JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')));
      expect(file.credentials.secretAccessKey).not.toBe('S3RVER');
    } finally {
      await local.stop();
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    }
  });

  it('locks with the process identity and takes over a lock whose PID now names another process', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'updraft-sealed-'));
    // The parent of this test process is alive and is no local cloud: a reused PID.
    const reused = process.ppid;
    writeFileSync(join(dataDir, 'lock'), JSON.stringify({ pid: reused, boot: bootId(), start: '1' }));
    const local = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
    try {
      const lock = JSON.parse(readFileSync(join(dataDir, 'lock'), 'utf8')) as Record<string, unknown>;
      expect(lock).toEqual({ pid: process.pid, boot: bootId(), start: processStartTime(process.pid) });
    } finally {
      await local.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
