/** Test helpers: a real local cloud (dynalite + s3rver + app server) in a temp dir, and seeding through the adapters. */

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { UpdateRecord } from '#core/types.ts';
import { precedenceKey } from '#core/version.ts';
import { bumpStamp } from '#functions/device-store.ts';
import { keys } from '#functions/keys.ts';
import { updateToItem } from '#functions/records.ts';
import { ALGORITHM, AmzClock, SigningKeys, sha256Hex } from '#functions/sigv4.ts';
import { createToken } from '#functions/tokens.ts';
import { LOCAL_BUCKET, LOCAL_REGION, type LocalCloud, startLocalCloud } from '#local/cloud.ts';
import { localCredentials, notifyLocalChange } from '#local/cloud-file.ts';

export interface TestCloud extends LocalCloud {
  readonly dataDir: string;
  /** Stops the cloud and removes its data dir. */
  dispose(): Promise<void>;
}

const quiet = { info() {}, warn() {}, error() {} };

export async function startTestCloud(
  dataDir = mkdtempSync(join(tmpdir(), 'updraft-test-')),
): Promise<TestCloud> {
  const cloud = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
  return {
    ...cloud,
    dataDir,
    async dispose() {
      await cloud.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let productSeq = 0;

/**
 * A product of its own (`prefix` and a number) with a product token, so that tests sharing one
 * cloud do not see each other's updates.
 */
/**
 * One real local cloud for a test file: started before its tests, disposed after them. `set`
 * receives it (the file keeps its own `cloud` variable); the result makes a fresh product per test.
 */
export function useTestCloud(
  prefix: string,
  set: (cloud: TestCloud) => void,
): () => Promise<{ name: string; token: string }> {
  let started: TestCloud | undefined;
  beforeAll(async () => {
    started = await startTestCloud();
    set(started);
  });
  afterAll(async () => {
    await started?.dispose();
  });
  return () => freshProduct(started!, prefix);
}

export async function freshProduct(
  cloud: TestCloud,
  prefix: string,
): Promise<{ name: string; token: string }> {
  const name = `${prefix}${++productSeq}`;
  const { token } = await createToken(cloud.table, { product: name });
  return { name, token };
}

/**
 * SigV4 headers of an S3 request signed with `credentials` (the local cloud's, unless a test
 * forges them): what the SDK sends, minus its extras. `url`'s path and query must be escaped already.
 */
export function signS3Request(
  method: string,
  url: string,
  body: Buffer,
  credentials: { accessKeyId: string; secretAccessKey: string },
  now = Date.now(),
): Record<string, string> {
  const { host, pathname, search } = new URL(url);
  const { amzDate, dateStamp } = new AmzClock().set(now);
  const keys = new SigningKeys(LOCAL_REGION, 's3');
  const hash = sha256Hex(body);
  const query = search
    .slice(1)
    .split('&')
    .filter(Boolean)
    .map((p) => (p.includes('=') ? p : `${p}=`))
    .sort()
    .join('&');
  const signed = 'host;x-amz-content-sha256;x-amz-date';
  const canonical = `${method}\n${pathname}\n${query}\nhost:${host}\nx-amz-content-sha256:${hash}\nx-amz-date:${amzDate}\n\n${signed}\n${hash}`;
  const signature = keys.sign(credentials.secretAccessKey, dateStamp, amzDate, canonical);
  return {
    'x-amz-content-sha256': hash,
    'x-amz-date': amzDate,
    authorization: `${ALGORITHM} Credential=${credentials.accessKeyId}/${keys.scope(dateStamp)}, SignedHeaders=${signed}, Signature=${signature}`,
  };
}

/** PUT an object into the local S3, signed with the local cloud's credentials (read from its data dir). */
export function putObject(
  s3Url: string,
  key: string,
  body: Buffer,
  tls: { ca?: string } = {},
  dataDir?: string,
): Promise<void> {
  const request = s3Url.startsWith('https:') ? httpsRequest : httpRequest;
  const url = `${s3Url}/${LOCAL_BUCKET}/${key}`;
  const auth = dataDir ? signS3Request('PUT', url, body, localCredentials(dataDir)) : {};
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'PUT', headers: { 'content-length': body.length, ...auth }, ...tls },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${key}: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let seq = 0;

/** Publishes an update through the adapters: image into S3, record into the table, stamp bumped. */
export async function seedUpdate(
  cloud: Pick<TestCloud, 's3Url' | 'table' | 'dataDir'>,
  fields: Partial<UpdateRecord> & { product?: string; version: string },
  image: Buffer = randomBytes(1024),
  tls: { ca?: string } = {},
): Promise<UpdateRecord> {
  const product = fields.product ?? 'demo';
  const id = fields.id ?? `u${Date.now().toString(36)}${(seq++).toString(36)}`;
  const key = `images/${product}/${fields.version}/image.bin`;
  await putObject(cloud.s3Url, key, image, tls, cloud.dataDir);
  const update: UpdateRecord = {
    policy: '',
    description: '',
    enabled: true,
    paused: false,
    allowDowngrade: false,
    created: new Date().toISOString(),
    counters: { started: 0, success: 0, failure: 0, deferred: 0 },
    ...fields,
    id,
    product,
    key,
    checksum: createHash('sha256').update(image).digest('hex'),
    size: image.length,
  };
  await cloud.table.put({ ...keys.versionGuard(product, precedenceKey(update.version)), id }, true);
  await cloud.table.put(updateToItem(update));
  await bumpStamp(cloud.table, product);
  notifyLocalChange(cloud.dataDir);
  return update;
}

/** Changes stored fields of an update (as `updraft edit` does) and bumps the stamp. */
export async function editUpdate(
  cloud: Pick<TestCloud, 'table' | 'dataDir'>,
  update: UpdateRecord,
  set: Record<string, string | number | boolean | undefined>,
) {
  await cloud.table.update(keys.update(update.product, update.id), { set });
  await bumpStamp(cloud.table, update.product);
  notifyLocalChange(cloud.dataDir);
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Record<string, unknown>;
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

export function checkin(
  cloud: Pick<LocalCloud, 'apiUrl' | 'devToken'>,
  device: Record<string, unknown>,
  token = cloud.devToken,
) {
  return post(`${cloud.apiUrl}/tok/provision/update`, device, { authorization: `Bearer ${token}` });
}

export function report(
  cloud: Pick<LocalCloud, 'apiUrl' | 'devToken'>,
  body: Record<string, unknown>,
  token = cloud.devToken,
) {
  return post(`${cloud.apiUrl}/tok/provision/updateReport`, body, { authorization: `Bearer ${token}` });
}
