/**
 * The admin module on the local cloud's real dynalite and s3rver, called as the console will: a
 * publish from a stream (an HTTP upload) and the typed errors with their statuses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdminError,
  ConflictError,
  InvalidPolicyError,
  listUpdates,
  NotFoundError,
  PublishError,
  publish,
  showUpdate,
} from '#admin/index.ts';
import { ImageStore } from '#cli/s3.ts';
import { keys } from '#functions/keys.ts';
import { LOCAL_BUCKET } from '#local/cloud.ts';
import { signS3Request, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
let images: ImageStore;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  cloud = await startTestCloud();
  images = new ImageStore({
    region: cloud.file.region,
    bucket: cloud.file.bucketName,
    endpoint: cloud.file.s3Endpoint,
    credentials: { ...cloud.file.credentials },
  });
});

afterAll(async () => {
  images?.destroy();
  await cloud?.dispose();
});

/** A stream of `chunks`, then an error when `failure` is given. */
function upload(chunks: Buffer[], failure?: Error): Readable {
  return Readable.from(
    (async function* () {
      yield* chunks;
      if (failure) throw failure;
    })(),
  );
}

/** A GET or HEAD of an image, signed as the builder's tools sign (the local S3 serves nothing else). */
function fetchImage(key: string, method: 'GET' | 'HEAD'): Promise<Response> {
  const url = `${cloud.s3Url}/${LOCAL_BUCKET}/${key}`;
  return fetch(url, { method, headers: signS3Request(method, url, Buffer.alloc(0), cloud.file.credentials) });
}

async function rejection(promise: Promise<unknown>): Promise<AdminError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as AdminError;
}

async function nothingPublished(product: string): Promise<void> {
  expect(await listUpdates({ table: cloud.table }, product)).toEqual([]);
  expect(await cloud.table.get(keys.versionGuard(product, '1.0.0'), true)).toBeUndefined();
  const object = await fetchImage(`images/${product}/1.0.0/fw.bin`, 'HEAD');
  expect(object.status).toBe(404);
}

describe('publish from a stream', { timeout: 60_000 }, () => {
  it('stores the streamed bytes, hashed on the way, under the given name', async () => {
    const bytes = randomBytes(300 * 1024);
    const record = await publish(
      { table: cloud.table, images },
      { product: 'streamed', version: '1.0.0', stream: upload([bytes]), name: 'fw.bin', size: bytes.length },
    );
    expect(record).toMatchObject({
      key: 'images/streamed/1.0.0/fw.bin',
      size: bytes.length,
      checksum: sha256(bytes),
    });
    const stored = await fetchImage(record.key, 'GET');
    expect(sha256(Buffer.from(await stored.arrayBuffer()))).toBe(sha256(bytes));
    expect((await listUpdates({ table: cloud.table }, 'streamed')).map((u) => u.id)).toEqual([record.id]);
  });

  it('an upload cut short leaves nothing visible and says the upload failed', async () => {
    const err = await rejection(
      publish(
        { table: cloud.table, images },
        {
          product: 'cut',
          version: '1.0.0',
          stream: upload([randomBytes(64 * 1024)], new Error('client went away')),
          name: 'fw.bin',
          size: 1024 * 1024,
        },
      ),
    );
    expect(err).toBeInstanceOf(PublishError);
    expect(err.message).toBe(
      'Publishing cut 1.0.0 failed while uploading the image: Reading uploaded image fw.bin failed: client went away; nothing was published',
    );
    expect(err.status).toBe(400);
    await nothingPublished('cut');
  });

  it('refuses more bytes than announced, and fewer', async () => {
    const stream = (n: number) => ({
      product: 'sized',
      version: '1.0.0',
      stream: upload([randomBytes(n)]),
      name: 'fw.bin',
      size: 1000,
    });
    const more = await rejection(publish({ table: cloud.table, images }, stream(1001)));
    expect(more.message).toMatch(
      /while uploading the image: The uploaded image is larger than the 1000 bytes announced; nothing was published$/,
    );
    const fewer = await rejection(publish({ table: cloud.table, images }, stream(999)));
    expect(fewer.message).toMatch(
      /The uploaded image ended after 999 of the 1000 bytes announced; nothing was published$/,
    );
    await nothingPublished('sized');
  });

  it('refuses a name that cannot end an S3 key before writing anything', async () => {
    const err = await rejection(
      publish(
        { table: cloud.table, images },
        { product: 'named', version: '1.0.0', stream: upload([]), name: '../x', size: 1 },
      ),
    );
    expect(err.message).toBe('Invalid image name "../x": use 1–128 characters of A-Z a-z 0-9 . _ + -');
    expect(err.status).toBe(400);
  });
});

describe('typed errors', { timeout: 60_000 }, () => {
  it('carry the status the console answers with', async () => {
    const missing = await rejection(
      showUpdate({ table: cloud.table }, { product: 'streamed', version: '9.0.0' }),
    );
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.status).toBe(404);
    const again = {
      product: 'streamed',
      version: '1.0.0',
      stream: upload([Buffer.from('x')]),
      name: 'fw.bin',
      size: 1,
    };
    const duplicate = await rejection(publish({ table: cloud.table, images }, again));
    expect(duplicate).toBeInstanceOf(ConflictError);
    expect(duplicate.status).toBe(409);
    const policy = await rejection(
      publish({ table: cloud.table, images }, { ...again, version: '2.0.0', policy: 'a == ' }),
    );
    expect(policy).toBeInstanceOf(InvalidPolicyError);
    expect(policy).toMatchObject({ status: 400, column: 6, detail: 'a == \n     ^' });
  });
});
