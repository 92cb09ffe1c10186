/**
 * `--cloud NAME` and `--cloud all` against deployed clouds, as read from cdk-outputs.json. Two
 * "deployed" clouds are stood in for by two tables and two buckets in the local cloud's dynalite and
 * s3rver, reached through the SDK's endpoint variables (AWS_ENDPOINT_URL_DYNAMODB / _S3).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTable } from '#local/cloud.ts';
import { signS3Request, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { runUpdraft } from './cli-helpers.ts';

let cloud: TestCloud;
let work: string;
let outputs: string;
const clouds = ['east', 'west'];

function putBucket(s3Url: string, bucket: string): Promise<void> {
  const url = `${s3Url}/${bucket}`;
  const headers = signS3Request('PUT', url, Buffer.alloc(0), cloud.file.credentials);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`bucket ${bucket}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-clouds-'));
  const stacks: Record<string, Record<string, string>> = {};
  for (const name of clouds) {
    await ensureTable({ client: cloud.table.client, name: `table-${name}` });
    await putBucket(cloud.s3Url, `bucket-${name}`);
    stacks[`updraft-${name}`] = {
      CloudName: name,
      ApiUrl: `https://${name}.example.com`,
      TableName: `table-${name}`,
      BucketName: `bucket-${name}`,
      Region: 'us-east-1',
    };
  }
  outputs = join(work, 'cdk-outputs.json');
  writeFileSync(outputs, JSON.stringify(stacks, null, 2));
});

afterAll(async () => {
  await cloud?.dispose();
  rmSync(work, { recursive: true, force: true });
});

const env = () => ({
  UPDRAFT_OUTPUTS: outputs,
  AWS_ENDPOINT_URL_DYNAMODB: cloud.file.dynamoEndpoint,
  AWS_ENDPOINT_URL_S3: cloud.s3Url,
  AWS_ACCESS_KEY_ID: cloud.file.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: cloud.file.credentials.secretAccessKey,
  AWS_REGION: 'us-east-1',
});

describe('deployed clouds from cdk-outputs.json', () => {
  it('publishes to every cloud with --cloud all, and each lists it', async () => {
    const file = join(work, 'fw.bin');
    writeFileSync(file, 'firmware for every cloud');
    const published = await runUpdraft(
      ['publish', '--cloud', 'all', '--product', 'gw', '--version', '2.0.0', '--file', file, '--json'],
      env(),
    );
    expect(published.code, published.stderr).toBe(0);
    for (const name of clouds) {
      const listed = await runUpdraft(['list', '--cloud', name, '--product', 'gw', '--json'], env());
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('"2.0.0"');
      const url = `${cloud.s3Url}/bucket-${name}/images/gw/2.0.0/fw.bin`;
      const object = await fetch(url, {
        headers: signS3Request('GET', url, Buffer.alloc(0), cloud.file.credentials),
      });
      expect(await object.text()).toBe('firmware for every cloud');
    }
    // The local cloud is not part of "all".
    const local = await runUpdraft(['list', '--product', 'gw', '--json'], { UPDRAFT_DATA: cloud.dataDir });
    expect(local.stdout).not.toContain('"2.0.0"');
  });

  it('names the known clouds when asked for an unknown one', async () => {
    const unknown = await runUpdraft(['list', '--cloud', 'north', '--product', 'gw'], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^updraft: Unknown cloud "north": use one of local, east, west/);
  });
});
