/**
 * Publish failures through the real `updraft` binary: each exits 1 with one clear line on stderr and
 * leaves no half-published update. Unreachable stores are simulated with proxies in front of the
 * local cloud's S3 and DynamoDB, named in a second cloud.json the CLI is pointed at.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublishError, publish } from '#admin/index.ts';
import { ImageStore } from '#cli/s3.ts';
import type { UpdateRecord } from '#core/types.ts';
import { keys } from '#functions/keys.ts';
import { LOCAL_BUCKET } from '#local/cloud.ts';
import { signS3Request, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { dyingProxy, errorLines, filteringDynamoProxy, runUpdraft } from './cli-helpers.ts';

let cloud: TestCloud;
let work: string;
let smallImage: string;
let product = 0;

function updraft(...args: string[]) {
  return runUpdraft(args, { UPDRAFT_DATA: cloud.dataDir });
}

/** Each test publishes to its own product. */
function freshProduct(): string {
  return `fail${++product}`;
}

async function listed(name: string): Promise<UpdateRecord[]> {
  const result = await updraft('list', '--product', name, '--json');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as UpdateRecord[];
}

/** A data dir whose cloud.json sends the CLI through `overrides` (e.g. a proxy) instead of the real endpoints. */
function redirectedDataDir(overrides: Record<string, string>): string {
  const dir = mkdtempSync(join(work, 'redirect-'));
  const file = JSON.parse(readFileSync(join(cloud.dataDir, 'cloud.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'cloud.json'), JSON.stringify({ ...file, ...overrides }));
  return dir;
}

async function objectStatus(key: string): Promise<number> {
  const url = `${cloud.s3Url}/${LOCAL_BUCKET}/${key}`;
  const headers = signS3Request('HEAD', url, Buffer.alloc(0), cloud.file.credentials);
  return (await fetch(url, { method: 'HEAD', headers })).status;
}

function expectOneLine(result: { code: number; stderr: string; stdout: string }, pattern: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  const lines = errorLines(result);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-cli-fail-'));
  smallImage = join(work, 'small.bin');
  writeFileSync(smallImage, randomBytes(2048));
});

afterAll(async () => {
  await cloud?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('publish refuses bad input before writing anything', { timeout: 90_000 }, () => {
  it('refuses a version that is not strict SemVer', async () => {
    const p = freshProduct();
    const result = await updraft('publish', '--product', p, '--version', '1.2', '--file', smallImage);
    expectOneLine(result, /^updraft: Invalid version "1\.2": not SemVer 2\.0$/);
    expect(await listed(p)).toEqual([]);
  });

  it('refuses a version already published, and one of the same precedence', async () => {
    const p = freshProduct();
    expect((await updraft('publish', '--product', p, '--version', '1.0.0', '--file', smallImage)).code).toBe(
      0,
    );
    const duplicate = await updraft('publish', '--product', p, '--version', '1.0.0', '--file', smallImage);
    expectOneLine(
      duplicate,
      new RegExp(`^updraft: Version 1\\.0\\.0 of ${p} is already published \\(update [a-z2-7]{10}\\)`),
    );
    const samePrecedence = await updraft(
      'publish',
      '--product',
      p,
      '--version',
      '1.0.0+build.7',
      '--file',
      smallImage,
    );
    expectOneLine(samePrecedence, /has the precedence of published 1\.0\.0/);
    expect((await listed(p)).map((u) => u.version)).toEqual(['1.0.0']);
  });

  it('shows the column of a policy error with a caret excerpt', async () => {
    const p = freshProduct();
    const policy = 'region == "eu" && ';
    const result = await updraft(
      'publish',
      '--product',
      p,
      '--version',
      '1.0.0',
      '--file',
      smallImage,
      '--policy',
      policy,
    );
    expect(result.code).toBe(1);
    const [message, excerpt, caret] = errorLines(result);
    expect(message).toMatch(/^updraft: Invalid policy: .* at column 1[5-9]$/);
    const column = Number(/column (\d+)$/.exec(message!)![1]);
    expect(excerpt).toBe(policy);
    expect(caret).toBe(`${' '.repeat(column - 1)}^`);
    expect(await listed(p)).toEqual([]);
  });

  it('refuses a missing, empty or non-regular image file', async () => {
    const p = freshProduct();
    const missing = await updraft(
      'publish',
      '--product',
      p,
      '--version',
      '1.0.0',
      '--file',
      join(work, 'nope.bin'),
    );
    expectOneLine(missing, /^updraft: Image file not found: .*nope\.bin$/);
    const emptyFile = join(work, 'empty.bin');
    writeFileSync(emptyFile, '');
    const empty = await updraft('publish', '--product', p, '--version', '1.0.0', '--file', emptyFile);
    expectOneLine(empty, /^updraft: Image file .*empty\.bin is empty$/);
    const dir = await updraft('publish', '--product', p, '--version', '1.0.0', '--file', work);
    expectOneLine(dir, /is not a regular file/);
    expect(await listed(p)).toEqual([]);
  });

  it('refuses an out-of-range limit and a prerelease without policy (every rule: cli-settings unit test)', async () => {
    const p = freshProduct();
    const base = ['publish', '--product', p, '--file', smallImage];
    const cases: [string[], RegExp][] = [
      [['--version', '1.0.0', '--percentage', '0'], /^updraft: Invalid --percentage 0/],
      [['--version', '1.0.0-beta.1'], /^updraft: Prerelease 1\.0\.0-beta\.1 needs a --policy/],
    ];
    for (const [args, pattern] of cases) expectOneLine(await updraft(...base, ...args), pattern);
    expect(await listed(p)).toEqual([]);
  });
});

describe('publish cleans up when a store fails mid-way', { timeout: 90_000 }, () => {
  it('S3 unreachable mid-upload: exit 1, one line, nothing published, version free again', async () => {
    const p = freshProduct();
    const image = join(work, 'twelve.bin');
    writeFileSync(image, randomBytes(12 * 1024 * 1024));
    const proxy = await dyingProxy(cloud.s3Url, 3 * 1024 * 1024);
    try {
      const data = redirectedDataDir({ s3Endpoint: proxy.url });
      const result = await runUpdraft(['publish', '--product', p, '--version', '1.0.0', '--file', image], {
        UPDRAFT_DATA: data,
      });
      expect(proxy.killed).toBe(true);
      expectOneLine(
        result,
        new RegExp(
          `^updraft: Publishing ${p} 1\\.0\\.0 failed while uploading the image: S3 unreachable at ${proxy.url} .*nothing was published`,
        ),
      );
    } finally {
      proxy.close();
    }
    expect(await listed(p)).toEqual([]);
    expect(await cloud.table.get(keys.versionGuard(p, '1.0.0'), true)).toBeUndefined();
    // With S3 back, the same version publishes: no guard or record was left behind.
    expect((await updraft('publish', '--product', p, '--version', '1.0.0', '--file', image)).code).toBe(0);
  });

  it('DynamoDB unreachable after the upload: exit 1, one line, image and guard removed', async () => {
    const p = freshProduct();
    const { dynamoEndpoint } = JSON.parse(readFileSync(join(cloud.dataDir, 'cloud.json'), 'utf8')) as {
      dynamoEndpoint: string;
    };
    // Drop exactly the write of the update record: the upload and the guard went through.
    const proxy = await filteringDynamoProxy(
      dynamoEndpoint,
      (op, body) => op === 'PutItem' && body.includes('"U#'),
    );
    try {
      const data = redirectedDataDir({ dynamoEndpoint: proxy.url });
      const result = await runUpdraft(
        ['publish', '--product', p, '--version', '1.0.0', '--file', smallImage],
        {
          UPDRAFT_DATA: data,
        },
      );
      expect(proxy.dropped).toBeGreaterThan(0);
      expectOneLine(
        result,
        new RegExp(
          `^updraft: Publishing ${p} 1\\.0\\.0 failed while writing the update record: DynamoDB at ${proxy.url} unreachable.*; nothing was published$`,
        ),
      );
    } finally {
      await proxy.close();
    }
    expect(await listed(p)).toEqual([]);
    expect(await objectStatus(`images/${p}/1.0.0/small.bin`)).toBe(404);
    expect(await cloud.table.get(keys.versionGuard(p, '1.0.0'), true)).toBeUndefined();
  });

  it('DynamoDB unreachable from the start: exit 1 with one line naming it', async () => {
    const data = redirectedDataDir({ dynamoEndpoint: 'http://127.0.0.1:9' });
    const result = await runUpdraft(['list', '--product', 'demo'], { UPDRAFT_DATA: data });
    expectOneLine(
      result,
      /^updraft: DynamoDB at http:\/\/127\.0\.0\.1:9 unreachable or unavailable: start the local cloud/,
    );
  });

  it('says how to start the local cloud when none runs', async () => {
    const result = await runUpdraft(['list', '--product', 'demo'], { UPDRAFT_DATA: join(work, 'no-cloud') });
    expectOneLine(result, /^updraft: The local cloud is not running .*: start it with npm start$/);
  });
});

describe('version guards', { timeout: 90_000 }, () => {
  it('refuses a version another publish is claiming, and takes over a stale claim', async () => {
    const p = freshProduct();
    const guard = keys.versionGuard(p, '1.0.0');
    await cloud.table.put({
      ...guard,
      id: 'deadpublish',
      version: '1.0.0',
      claimed: new Date().toISOString(),
    });
    const busy = await updraft('publish', '--product', p, '--version', '1.0.0', '--file', smallImage);
    expectOneLine(busy, /is being published by another updraft \(claimed \d+ s ago\)/);

    const longAgo = new Date(Date.now() - 10 * 60_000).toISOString();
    await cloud.table.put({ ...guard, id: 'deadpublish', version: '1.0.0', claimed: longAgo });
    const taken = await updraft(
      'publish',
      '--product',
      p,
      '--version',
      '1.0.0',
      '--file',
      smallImage,
      '--json',
    );
    expect(taken.code).toBe(0);
    const record = JSON.parse(taken.stdout) as UpdateRecord;
    expect((await cloud.table.get(guard, true))?.id).toBe(record.id);
    expect((await listed(p)).map((u) => u.id)).toEqual([record.id]);
  });

  it('a publish whose guard was taken over mid-way stops, and leaves the new holder its guard and image', async () => {
    const p = freshProduct();
    const guard = keys.versionGuard(p, '1.0.0');
    const images = new ImageStore({
      region: cloud.file.region,
      bucket: cloud.file.bucketName,
      endpoint: cloud.file.s3Endpoint,
      credentials: { ...cloud.file.credentials },
    });
    let hijacked: Promise<unknown> | undefined;
    // The image arrives only once another publish has taken the guard over: the take-over lands
    // between the claim and the record write every time, not whenever a racing put happens to.
    const image = readFileSync(smallImage);
    async function* takenOverThenImage() {
      hijacked = cloud.table.put({
        ...guard,
        id: 'otherpublish',
        version: '1.0.0',
        claimed: new Date().toISOString(),
      });
      await hijacked;
      yield image;
    }
    try {
      const attempt = publish(
        { table: cloud.table, images },
        {
          product: p,
          version: '1.0.0',
          stream: Readable.from(takenOverThenImage()),
          name: 'small.bin',
          size: image.length,
        },
      );
      await expect(attempt).rejects.toThrow(PublishError);
      await expect(attempt).rejects.toThrow(/another updraft took over this version/);
    } finally {
      images.destroy();
    }
    expect(hijacked).toBeDefined();
    expect((await cloud.table.get(guard, true))?.id).toBe('otherpublish');
    expect(await objectStatus(`images/${p}/1.0.0/small.bin`)).toBe(200);
    expect(await listed(p)).toEqual([]);
  });
});
