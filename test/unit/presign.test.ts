import { createHash, createHmac } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AwsCredentials, credentialsFromEnv, Presigner, type S3Location } from '#functions/presign.ts';
import { CREDS, NOW, SESSION } from '#test/support/aws-credentials.ts';

const SPECIAL_KEY = 'images/demo/1.2.3/my image+v(1)!.bin';

const AWS_VIRTUAL: S3Location = { region: 'us-east-1', bucket: 'updraft-images', forcePathStyle: false };
const S3RVER: S3Location = {
  endpoint: 'http://127.0.0.1:4569',
  region: 'us-east-1',
  bucket: 'updraft-images',
  forcePathStyle: true,
};

/** The reference: the SDK's own presigner, configured as DESIGN expects (no checksum mode on GET). */
async function sdkPresign(
  location: S3Location,
  credentials: AwsCredentials,
  key: string,
  expiresIn: number,
  now: number,
): Promise<string> {
  const client = new S3Client({
    region: location.region,
    credentials,
    forcePathStyle: location.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(location.endpoint ? { endpoint: location.endpoint } : {}),
  });
  const command = new GetObjectCommand({ Bucket: location.bucket, Key: key });
  return getSignedUrl(client, command, { expiresIn, signingDate: new Date(now) });
}

// ---- A from-scratch SigV4 query-string verifier, sharing no code with functions/presign.ts. ----

function rfc3986(value: string): string {
  return [...new TextEncoder().encode(value)]
    .map((byte) => {
      const c = String.fromCharCode(byte);
      return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

function sigV4QuerySignature(input: {
  secret: string;
  host: string;
  path: string;
  params: Array<[string, string]>;
  amzDate: string;
  scope: string;
}): string {
  const canonicalQuery = input.params
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    input.path,
    canonicalQuery,
    `host:${input.host}`,
    '',
    'host',
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    input.amzDate,
    input.scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const [date, region, service, terminator] = input.scope.split('/') as [string, string, string, string];
  let key: Buffer | string = `AWS4${input.secret}`;
  for (const part of [date, region, service, terminator])
    key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

/** Recomputes the signature of a presigned URL from its parts; returns the claimed and the recomputed. */
function verifyPresignedUrl(
  url: string,
  secret: string,
): { claimed: string; recomputed: string; scope: string } {
  const parsed = new URL(url);
  const params = parsed.search
    .slice(1)
    .split('&')
    .map((pair) => pair.split('=').map(decodeURIComponent) as [string, string]);
  const claimed = params.find(([k]) => k === 'X-Amz-Signature')?.[1] ?? '';
  const credential = params.find(([k]) => k === 'X-Amz-Credential')?.[1] ?? '';
  const amzDate = params.find(([k]) => k === 'X-Amz-Date')?.[1] ?? '';
  const scope = credential.slice(credential.indexOf('/') + 1);
  const recomputed = sigV4QuerySignature({
    secret,
    host: parsed.host,
    path: parsed.pathname,
    params: params.filter(([k]) => k !== 'X-Amz-Signature'),
    amzDate,
    scope,
  });
  return { claimed, recomputed, scope };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Presigner.presignGet is byte-identical to getSignedUrl', () => {
  const cases: Array<{
    name: string;
    location: S3Location;
    credentials: AwsCredentials;
    key: string;
    expiresIn: number;
  }> = [
    {
      name: 'plain key, virtual-hosted',
      location: AWS_VIRTUAL,
      credentials: CREDS,
      key: 'images/demo/1.2.3/app.bin',
      expiresIn: 3600,
    },
    {
      name: 'special characters',
      location: AWS_VIRTUAL,
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 3600,
    },
    {
      name: 'unicode and reserved characters',
      location: AWS_VIRTUAL,
      credentials: CREDS,
      key: 'images/ü€😀/~*\'&=?#%;:@$,[]{}|^`"<>\\\t.bin',
      expiresIn: 900,
    },
    {
      name: 'literal %2F stays escaped',
      location: AWS_VIRTUAL,
      credentials: CREDS,
      key: 'a%2Fb/c',
      expiresIn: 900,
    },
    {
      name: 'empty and leading segments',
      location: AWS_VIRTUAL,
      credentials: CREDS,
      key: '/lead//x',
      expiresIn: 900,
    },
    { name: 'session token', location: AWS_VIRTUAL, credentials: SESSION, key: SPECIAL_KEY, expiresIn: 3600 },
    {
      name: 's3rver path-style with port',
      location: S3RVER,
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 3600,
    },
    {
      name: 's3rver with session token',
      location: S3RVER,
      credentials: SESSION,
      key: 'images/p/1.0.0/a.bin',
      expiresIn: 900,
    },
    {
      name: 'path-style on the default endpoint',
      location: { ...AWS_VIRTUAL, forcePathStyle: true },
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 900,
    },
    {
      name: 'explicit AWS endpoint',
      location: { ...AWS_VIRTUAL, endpoint: 'https://s3.us-east-1.amazonaws.com' },
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 3600,
    },
    {
      name: 'eu-west-1',
      location: { ...AWS_VIRTUAL, region: 'eu-west-1' },
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 3600,
    },
    {
      name: 'ap-southeast-2 with session',
      location: { ...AWS_VIRTUAL, region: 'ap-southeast-2' },
      credentials: SESSION,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'China partition',
      location: { ...AWS_VIRTUAL, region: 'cn-north-1' },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'GovCloud',
      location: { ...AWS_VIRTUAL, region: 'us-gov-west-1' },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'dotted bucket falls back to path style',
      location: { ...AWS_VIRTUAL, bucket: 'my.images' },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'short bucket falls back to path style',
      location: { ...AWS_VIRTUAL, bucket: 'ab' },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'custom endpoint, virtual-hosted, with path prefix',
      location: { ...AWS_VIRTUAL, endpoint: 'https://minio.example.com/store' },
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 900,
    },
    {
      name: 'custom endpoint with trailing slash, path-style',
      location: { ...S3RVER, endpoint: 'http://localhost:4569/' },
      credentials: CREDS,
      key: SPECIAL_KEY,
      expiresIn: 900,
    },
    {
      name: 'IP endpoint without forcePathStyle is path-style',
      location: { ...S3RVER, forcePathStyle: false },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    {
      name: 'default port dropped from host',
      location: { ...AWS_VIRTUAL, endpoint: 'https://minio.example.com:443' },
      credentials: CREDS,
      key: 'k',
      expiresIn: 900,
    },
    { name: 'one second', location: AWS_VIRTUAL, credentials: CREDS, key: 'k', expiresIn: 1 },
    { name: 'one week', location: AWS_VIRTUAL, credentials: CREDS, key: 'k', expiresIn: 604_800 },
  ];

  it.each(cases)('$name', async ({ location, credentials, key, expiresIn }) => {
    const presigner = new Presigner(location, () => credentials);

    const ours = presigner.presignGet(key, expiresIn, NOW);

    expect(ours).toBe(await sdkPresign(location, credentials, key, expiresIn, NOW));
  });

  it('signs at Date.now() when no time is given', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW + 1234);
    const presigner = new Presigner(S3RVER, () => CREDS);

    const ours = presigner.presignGet(SPECIAL_KEY, 3600);

    expect(ours).toBe(await sdkPresign(S3RVER, CREDS, SPECIAL_KEY, 3600, NOW + 1234));
    expect(ours).toContain('X-Amz-Date=20240506T123457Z');
  });
});

describe('signing key cache', () => {
  it('derives a new key across a UTC day boundary, and back', async () => {
    const presigner = new Presigner(AWS_VIRTUAL, () => CREDS);
    const lastSecond = Date.UTC(2024, 11, 31, 23, 59, 59, 999);
    const nextDay = Date.UTC(2025, 0, 1, 0, 0, 0, 1);

    const urls = [lastSecond, nextDay, nextDay + 3_600_000, lastSecond].map((t) =>
      presigner.presignGet(SPECIAL_KEY, 3600, t),
    );

    expect(urls[0]).toBe(await sdkPresign(AWS_VIRTUAL, CREDS, SPECIAL_KEY, 3600, lastSecond));
    expect(urls[1]).toBe(await sdkPresign(AWS_VIRTUAL, CREDS, SPECIAL_KEY, 3600, nextDay));
    expect(urls[2]).toBe(await sdkPresign(AWS_VIRTUAL, CREDS, SPECIAL_KEY, 3600, nextDay + 3_600_000));
    expect(urls[3]).toBe(urls[0]);
    expect(urls[0]).toContain('%2F20241231%2F');
    expect(urls[1]).toContain('%2F20250101%2F');
  });

  it('picks up rotated credentials on the next presign, within the same second', async () => {
    const tokenRotated: AwsCredentials = { ...SESSION, sessionToken: 'another-token' };
    const secretRotated: AwsCredentials = { ...CREDS, secretAccessKey: 'a-new-secret' };
    let current = CREDS;
    const presigner = new Presigner(AWS_VIRTUAL, () => current);

    const before = presigner.presignGet(SPECIAL_KEY, 900, NOW);
    current = SESSION;
    const rotated = presigner.presignGet(SPECIAL_KEY, 900, NOW);
    current = tokenRotated;
    const tokenOnly = presigner.presignGet(SPECIAL_KEY, 900, NOW);
    current = secretRotated;
    const secretOnly = presigner.presignGet(SPECIAL_KEY, 900, NOW);

    expect(before).toBe(await sdkPresign(AWS_VIRTUAL, CREDS, SPECIAL_KEY, 900, NOW));
    expect(rotated).toBe(await sdkPresign(AWS_VIRTUAL, SESSION, SPECIAL_KEY, 900, NOW));
    expect(tokenOnly).toBe(await sdkPresign(AWS_VIRTUAL, tokenRotated, SPECIAL_KEY, 900, NOW));
    expect(tokenOnly).toContain('X-Amz-Security-Token=another-token&');
    expect(secretOnly).toBe(await sdkPresign(AWS_VIRTUAL, secretRotated, SPECIAL_KEY, 900, NOW));
    expect(secretOnly).not.toContain('X-Amz-Security-Token');
    expect(new Set([before, rotated, tokenOnly, secretOnly]).size).toBe(4);
  });

  it('keeps signing correctly for many keys and times within one day', () => {
    const presigner = new Presigner(S3RVER, () => SESSION);
    for (let i = 0; i < 50; i++) {
      const url = presigner.presignGet(`images/p/1.0.${i}/f ${i}.bin`, 900 + i, NOW + i * 61_000);
      const { claimed, recomputed } = verifyPresignedUrl(url, SESSION.secretAccessKey);
      expect(claimed).toBe(recomputed);
    }
  });
});

describe('independent SigV4 verification', () => {
  it('the from-scratch verifier reproduces the AWS documentation example', () => {
    // docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html, "An Example".
    const signature = sigV4QuerySignature({
      secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      host: 'examplebucket.s3.amazonaws.com',
      path: '/test.txt',
      params: [
        ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
        ['X-Amz-Credential', 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request'],
        ['X-Amz-Date', '20130524T000000Z'],
        ['X-Amz-Expires', '86400'],
        ['X-Amz-SignedHeaders', 'host'],
      ],
      amzDate: '20130524T000000Z',
      scope: '20130524/us-east-1/s3/aws4_request',
    });

    expect(signature).toBe('aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
  });

  it.each([
    ['virtual-hosted', AWS_VIRTUAL, CREDS],
    ['s3rver with session token', S3RVER, SESSION],
    ['eu-central-1', { ...AWS_VIRTUAL, region: 'eu-central-1' }, SESSION],
  ] as const)('our signature verifies from scratch: %s', (_name, location, credentials) => {
    const presigner = new Presigner(location, () => credentials);

    const url = presigner.presignGet(SPECIAL_KEY, 3600, NOW);
    const { claimed, recomputed, scope } = verifyPresignedUrl(url, credentials.secretAccessKey);

    expect(claimed).toMatch(/^[0-9a-f]{64}$/);
    expect(claimed).toBe(recomputed);
    expect(scope).toBe(`20240506/${location.region}/s3/aws4_request`);
  });

  it('a tampered URL no longer verifies', () => {
    const url = new Presigner(AWS_VIRTUAL, () => CREDS).presignGet('images/p/1.0.0/a.bin', 3600, NOW);

    const tampered = url.replace('X-Amz-Expires=3600', 'X-Amz-Expires=7200');
    const { claimed, recomputed } = verifyPresignedUrl(tampered, CREDS.secretAccessKey);

    expect(claimed).not.toBe(recomputed);
  });

  it('the URL path decodes back to the bucket and key', () => {
    const url = new Presigner(S3RVER, () => CREDS).presignGet(SPECIAL_KEY, 3600, NOW);

    const parsed = new URL(url);

    expect(parsed.origin).toBe('http://127.0.0.1:4569');
    expect(decodeURIComponent(parsed.pathname)).toBe(`/updraft-images/${SPECIAL_KEY}`);
    expect(parsed.searchParams.get('X-Amz-Expires')).toBe('3600');
  });
});

describe('input errors', () => {
  const presigner = new Presigner(AWS_VIRTUAL, () => CREDS);

  it.each([0, -1, 604_801, 1.5, Number.NaN])('rejects expiresIn %s', (expiresIn) => {
    expect(() => presigner.presignGet('k', expiresIn, NOW)).toThrow(/^Invalid expiresIn .*1 to 604800$/);
  });

  it('rejects an empty key', () => {
    expect(() => presigner.presignGet('', 900, NOW)).toThrow('Cannot presign an empty S3 key');
  });

  it.each([
    [{ ...AWS_VIRTUAL, region: 'US East' }, /Invalid S3 region "US East"/],
    [{ ...AWS_VIRTUAL, bucket: '' }, /Invalid S3 bucket name ""/],
    [
      { ...S3RVER, endpoint: 'ftp://127.0.0.1:4569' },
      /Invalid S3 endpoint "ftp:\/\/127.0.0.1:4569": the scheme must be http or https/,
    ],
    [
      { ...S3RVER, endpoint: '127.0.0.1:4569' },
      /Invalid S3 endpoint "127.0.0.1:4569": expected a URL like http/,
    ],
    [{ ...S3RVER, endpoint: 'http://h:1/?x=1' }, /expected no query, fragment or user info/],
  ])('rejects location %j', (location, message) => {
    expect(() => new Presigner(location, () => CREDS)).toThrow(message);
  });
});

describe('credentialsFromEnv', () => {
  it('reads the three Lambda variables', () => {
    expect(
      credentialsFromEnv({
        AWS_ACCESS_KEY_ID: 'AKID',
        AWS_SECRET_ACCESS_KEY: 'SECRET',
        AWS_SESSION_TOKEN: 'TOKEN',
      }),
    ).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'SECRET', sessionToken: 'TOKEN' });
  });

  it('leaves the session token out when absent or empty', () => {
    const credentials = credentialsFromEnv({
      AWS_ACCESS_KEY_ID: 'AKID',
      AWS_SECRET_ACCESS_KEY: 'SECRET',
      AWS_SESSION_TOKEN: '',
    });

    expect(credentials).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'SECRET' });
    expect('sessionToken' in credentials).toBe(false);
  });

  it.each([
    [{ AWS_SECRET_ACCESS_KEY: 'SECRET' }, 'AWS_ACCESS_KEY_ID'],
    [{ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: 'SECRET' }, 'AWS_ACCESS_KEY_ID'],
    [{ AWS_ACCESS_KEY_ID: 'AKID' }, 'AWS_SECRET_ACCESS_KEY'],
  ])('names the missing variable (%j)', (env, variable) => {
    expect(() => credentialsFromEnv(env)).toThrow(`Missing environment variable ${variable}:`);
  });

  it('defaults to process.env', () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'FROM_PROCESS');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S');
    vi.stubEnv('AWS_SESSION_TOKEN', '');
    try {
      expect(credentialsFromEnv()).toEqual({ accessKeyId: 'FROM_PROCESS', secretAccessKey: 'S' });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
