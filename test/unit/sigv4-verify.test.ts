/**
 * The embedded store's SigV4 checks against what our own signers produce (the presigner devices'
 * URLs come from, the DynamoDB client the local cloud uses): accepted as signed, refused once
 * anything signed changes. Pure: fixed clock, no network.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoClient } from '#functions/dynamo-client.ts';
import { Presigner } from '#functions/presign.ts';
import { SignatureVerifier } from '#local/sigv4-verify.ts';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const credentials = { accessKeyId: 'UPDRAFTLOCALTEST', secretAccessKey: 'local-secret' };
const presigner = new Presigner(
  { region: 'us-east-1', bucket: 'updraft-images', endpoint: 'http://127.0.0.1:4569', forcePathStyle: true },
  () => credentials,
);
const s3 = new SignatureVerifier(credentials, 'us-east-1', 's3', () => NOW);

function asRequest(url: string, method = 'GET') {
  const u = new URL(url);
  return { method, url: u.pathname + u.search, headers: { host: u.host } };
}

describe('presigned URLs', () => {
  const keys = [
    'images/demo/1.2.0/image.bin',
    'images/a b/1.0.0+build.7/ü€(1)!.bin',
    "images/x/1.0.0/'*~.bin",
  ];
  it.each(keys)('accepts what the presigner signed: %s', (key) => {
    const url = presigner.presignGet(key, 3600, NOW - 1000);
    expect(s3.verifyPresigned(asRequest(url), [])).toBeUndefined();
    expect(s3.verifyPresigned(asRequest(url, 'HEAD'), [])).toBeUndefined();
  });

  it('refuses another path, host, expiry, key or an expired URL, each with one line', () => {
    const url = presigner.presignGet('images/demo/1.2.0/image.bin', 3600, NOW - 1000);
    const refusals = [
      url.replace('/demo/', '/other/'),
      url.replace('X-Amz-Expires=3600', 'X-Amz-Expires=7200'),
      url.replace('127.0.0.1:4569', '127.0.0.1:4570'),
      url.replace(/X-Amz-Signature=[0-9a-f]{4}/, 'X-Amz-Signature=0000'),
      presigner.presignGet('images/demo/1.2.0/image.bin', 60, NOW - 61_000),
      new Presigner(
        {
          region: 'us-east-1',
          bucket: 'updraft-images',
          endpoint: 'http://127.0.0.1:4569',
          forcePathStyle: true,
        },
        () => ({ accessKeyId: credentials.accessKeyId, secretAccessKey: 'guessed' }),
      ).presignGet('images/demo/1.2.0/image.bin', 3600, NOW),
    ];
    for (const forged of refusals) {
      const reason = s3.verifyPresigned(asRequest(forged), []);
      expect(reason, forged).toMatch(/^[^\n]+$/);
    }
  });

  it('accepts the public host the URL was signed for when the client sends another Host', () => {
    const url = presigner.presignGet('images/demo/1.2.0/image.bin', 3600, NOW);
    const req = { ...asRequest(url), headers: { host: '127.0.0.1' } };
    expect(s3.verifyPresigned(req, [])).toBeDefined();
    expect(s3.verifyPresigned(req, ['127.0.0.1:4569'])).toBeUndefined();
  });
});

describe('header signatures', () => {
  const client = new DynamoClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:8000',
    credentials: () => credentials,
  });
  const dynamo = new SignatureVerifier(credentials, 'us-east-1', 'dynamodb', () => NOW);
  const payload = Buffer.from('{"TableName":"updraft"}');
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('accepts what the DynamoDB client signed and refuses a changed body, target or clock', () => {
    const headers = client.signedHeaders('GetItem', payload, credentials, NOW);
    const req = { method: 'POST', url: '/', headers };
    expect(dynamo.verifyHeader(req, sha(payload))).toBeUndefined();
    expect(dynamo.verifyHeader(req, sha(Buffer.from('{"TableName":"other"}')))).toMatch(/does not match/);
    const retargeted = { ...req, headers: { ...headers, 'x-amz-target': 'DynamoDB_20120810.DeleteItem' } };
    expect(dynamo.verifyHeader(retargeted, sha(payload))).toMatch(/does not match/);
    const old = client.signedHeaders('GetItem', payload, credentials, NOW - 16 * 60_000);
    expect(dynamo.verifyHeader({ ...req, headers: old }, sha(payload))).toMatch(/^Signature expired/);
    const s3Scope = new SignatureVerifier(credentials, 'us-east-1', 's3', () => NOW);
    expect(s3Scope.verifyHeader(req, sha(payload))).toMatch(/credential scope/);
  });
});
