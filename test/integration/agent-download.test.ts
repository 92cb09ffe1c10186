import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadImage, s3ErrorCode } from '#agent/download.ts';
import { DownloadRefusedError, TransientError } from '#agent/errors.ts';
import {
  closedPort,
  type Fault,
  makeImage,
  s3ErrorBody,
  seededRandom,
  startFaultProxy,
  startImageServer,
  type TestImage,
} from './agent-fixtures.ts';

const MiB = 1 << 20;
let dir: string;
let image: TestImage;
let data: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agent-download-'));
  image = makeImage(join(dir, 'source.img'), 6 * MiB + 12345);
  data = readFileSync(image.path);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function target(name: string): string {
  return join(dir, name);
}

describe('downloadImage', () => {
  it('streams the image to a 0600 file and hashes it', async () => {
    const server = await startImageServer(data);
    try {
      const file = target('plain.img');
      const result = await downloadImage({
        url: server.url,
        size: image.size,
        file,
        offset: 0,
        stallTimeoutMs: 5000,
      });
      expect(result.sha256).toBe(image.sha256);
      expect(result.attempts).toBe(1);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(file).size).toBe(image.size);
    } finally {
      await server.close();
    }
  });

  it('resumes with Range after connections cut at 24 random offsets and ends with the exact sha256', async () => {
    const seed = Date.now() >>> 0;
    const random = seededRandom(seed);
    const cuts = new Set<number>();
    while (cuts.size < 24) cuts.add(1 + Math.floor(random() * (image.size - 2)));
    const faults: Fault[] = [...cuts].map((at) => ({ kind: 'cut', at }));
    const server = await startImageServer(data);
    const proxy = await startFaultProxy(server.url, faults);
    try {
      const checkpoints: number[] = [];
      const result = await downloadImage({
        url: proxy.rewrite(server.url),
        size: image.size,
        file: target('cuts.img'),
        offset: 0,
        stallTimeoutMs: 5000,
        onCheckpoint: (offset) => checkpoints.push(offset),
      });
      expect(result.sha256, `seed ${seed}`).toBe(image.sha256);
      // Cuts closer together than one socket read can fall into one attempt; most must trigger one each.
      expect(proxy.triggered.length, `seed ${seed}`).toBeGreaterThanOrEqual(20);
      expect(result.resumedAt.length, `seed ${seed}`).toBeGreaterThanOrEqual(proxy.triggered.length);
      expect(server.ranges.filter((r) => r.startsWith('bytes=')).length).toBe(result.resumedAt.length);
      // Each drop checkpoints what was received; the complete file is not checkpointed (see download.ts).
      expect(checkpoints.length).toBeGreaterThanOrEqual(proxy.triggered.length);
      expect(checkpoints.at(-1)).toBeLessThan(image.size);
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('cuts a stalled connection after the stall timeout and resumes', async () => {
    const server = await startImageServer(data);
    const proxy = await startFaultProxy(server.url, [{ kind: 'stall', at: 2 * MiB + 7 }]);
    try {
      const started = Date.now();
      const result = await downloadImage({
        url: proxy.rewrite(server.url),
        size: image.size,
        file: target('stall.img'),
        offset: 0,
        stallTimeoutMs: 300,
      });
      expect(result.sha256).toBe(image.sha256);
      expect(result.attempts).toBe(2);
      expect(result.resumedAt[0]).toBe(2 * MiB + 7);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('delivers corrupted bytes with a different sha256 (verification is the caller’s)', async () => {
    const server = await startImageServer(data);
    const proxy = await startFaultProxy(server.url, [{ kind: 'corrupt', at: 4321 }]);
    try {
      const result = await downloadImage({
        url: proxy.rewrite(server.url),
        size: image.size,
        file: target('corrupt.img'),
        offset: 0,
        stallTimeoutMs: 5000,
      });
      expect(result.sha256).not.toBe(image.sha256);
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('continues from a persisted offset after a restart, re-hashing the kept prefix', async () => {
    const server = await startImageServer(data);
    try {
      const file = target('restart.img');
      // A previous process got 3 MiB + 5 on disk (and more that was never made durable).
      writeFileSync(file, data.subarray(0, 4 * MiB));
      const offset = 3 * MiB + 5;
      const result = await downloadImage({
        url: server.url,
        size: image.size,
        file,
        offset,
        stallTimeoutMs: 5000,
      });
      expect(result.sha256).toBe(image.sha256);
      expect(server.ranges).toEqual([`bytes=${offset}-`]);
    } finally {
      await server.close();
    }
  });

  it('resumes from the end of a file shorter than the persisted offset, and persists that offset at once', async () => {
    const server = await startImageServer(data);
    try {
      const file = target('short.img');
      // The persisted offset says 3 MiB, but only 2 MiB + 7 survived (a damaged or replaced file).
      writeFileSync(file, data.subarray(0, 2 * MiB + 7));
      const checkpoints: number[] = [];
      const result = await downloadImage({
        url: server.url,
        size: image.size,
        file,
        offset: 3 * MiB,
        stallTimeoutMs: 5000,
        onCheckpoint: (offset) => checkpoints.push(offset),
      });
      expect(result.sha256).toBe(image.sha256);
      expect(server.ranges).toEqual([`bytes=${2 * MiB + 7}-`]);
      expect(checkpoints[0]).toBe(2 * MiB + 7);
    } finally {
      await server.close();
    }
  });

  it('starts over when the server ignores Range', async () => {
    const server = await startImageServer(data, { ignoreRange: true });
    try {
      const file = target('norange.img');
      writeFileSync(file, data.subarray(0, MiB));
      const result = await downloadImage({
        url: server.url,
        size: image.size,
        file,
        offset: MiB,
        stallTimeoutMs: 5000,
      });
      expect(result.sha256).toBe(image.sha256);
      expect(statSync(file).size).toBe(image.size);
    } finally {
      await server.close();
    }
  });

  it('reads a chunked body (no Content-Length) in odd-sized chunks', async () => {
    const server = await startImageServer(data, { chunked: true });
    try {
      const result = await downloadImage({
        url: server.url,
        size: image.size,
        file: target('chunked.img'),
        offset: 0,
        stallTimeoutMs: 5000,
      });
      expect(result.sha256).toBe(image.sha256);
    } finally {
      await server.close();
    }
  });

  it('refuses a body larger than the offered size', async () => {
    const server = await startImageServer(data);
    try {
      const file = target('oversize.img');
      const attempt = downloadImage({
        url: server.url,
        size: image.size - 1,
        file,
        offset: 0,
        stallTimeoutMs: 5000,
      });
      await expect(attempt).rejects.toThrow(DownloadRefusedError);
      await expect(attempt).rejects.toThrow(/more than the offered size/);
    } finally {
      await server.close();
    }
  });

  it('gives up after bounded attempts when the server keeps failing', async () => {
    const server = await startImageServer(data);
    const proxy = await startFaultProxy(
      server.url,
      Array.from({ length: 10 }, () => ({ kind: 'cut', at: 0 }) as const),
    );
    try {
      const attempt = downloadImage({
        url: proxy.rewrite(server.url),
        size: image.size,
        file: target('bounded.img'),
        offset: 0,
        stallTimeoutMs: 5000,
        retry: { maxWithoutProgress: 3, baseDelayMs: 10 },
      });
      await expect(attempt).rejects.toThrow(TransientError);
      await expect(attempt).rejects.toThrow(/after 3 attempts/);
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('refuses up front an image larger than the free disk space', async () => {
    const server = await startImageServer(data);
    try {
      const size = 2 ** 52;
      const attempt = downloadImage({
        url: server.url,
        size,
        file: target('huge.img'),
        offset: 0,
        stallTimeoutMs: 5000,
      });
      await expect(attempt).rejects.toThrow(/Not enough disk space/);
      expect(server.ranges).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('stops cleanly with DownloadRefusedError when the disk fills during the download', async (ctx) => {
    // A real full filesystem: an 8 MiB tmpfs, filled by another writer once the download runs.
    const mount = target('tmpfs');
    mkdirSync(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      // Without root there is no small filesystem to fill; the disk space check must still stop it.
      ctx.annotate('mount needs root: checked the up-front disk space refusal instead');
      const attempt = downloadImage({
        url: 'http://127.0.0.1:9/',
        size: 2 ** 52,
        file: target('nomount.img'),
        offset: 0,
        stallTimeoutMs: 1000,
      });
      await expect(attempt).rejects.toThrow(DownloadRefusedError);
      return;
    }
    const server = await startImageServer(data, { bytesPerSecond: 8 * MiB });
    let filled = false;
    try {
      const file = join(mount, 'image.img');
      const attempt = downloadImage({
        url: server.url,
        size: image.size,
        file,
        offset: 0,
        stallTimeoutMs: 5000,
        onProgress: (received) => {
          if (received > MiB && !filled) {
            filled = true;
            try {
              writeFileSync(join(mount, 'filler'), Buffer.alloc(6 * MiB));
            } catch {
              // Filled up to the brim, which is the point.
            }
          }
        },
      });
      await expect(attempt).rejects.toThrow(DownloadRefusedError);
      await expect(attempt).rejects.toThrow(/Disk full/);
      expect(filled).toBe(true);
      expect(statSync(file).size).toBeLessThan(image.size);
    } finally {
      await server.close();
      execFileSync('umount', [mount]);
    }
  });

  it('restarts from byte 0 once after a 416 to a resume, then refuses', async () => {
    // The server's object is shorter than the kept prefix says: a Range past its end gets 416.
    const served = data.subarray(0, MiB);
    const server = await startImageServer(served);
    try {
      const file = target('416.img');
      const kept = MiB + 50;
      writeFileSync(file, data.subarray(0, kept));
      const checkpoints: number[] = [];
      const attempt = downloadImage({
        url: server.url,
        size: MiB + 100,
        file,
        offset: kept,
        stallTimeoutMs: 5000,
        retry: { baseDelayMs: 10 },
        onCheckpoint: (offset) => checkpoints.push(offset),
      });
      await expect(attempt).rejects.toThrow(DownloadRefusedError);
      await expect(attempt).rejects.toThrow(
        /answered HTTP 416 to a resume at byte 1048576, after restarting from byte 0 once$/,
      );
      // Once from the kept prefix, once from 0 (the whole object, still short), once more: refused.
      expect(server.ranges).toEqual([`bytes=${kept}-`, '', `bytes=${MiB}-`]);
      // The truncation to byte 0 reached the persisted offset before any new byte did.
      expect(checkpoints[0]).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('names the origin and the S3 error code, never the signed query, in errors', async () => {
    const server = await startImageServer(data, {
      refuse: { status: 403, body: s3ErrorBody('AccessDenied', 'Request has expired') },
    });
    try {
      const origin = new URL(server.url).origin;
      const attempt = downloadImage({
        url: server.url,
        size: image.size,
        file: target('403.img'),
        offset: 0,
        stallTimeoutMs: 5000,
      });
      const err = await attempt.then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toBe(`Image URL refused with HTTP 403 AccessDenied by ${origin}`);
      expect(err?.message).not.toMatch(/X-Amz|images\/demo/);
      // 403 is not retried within the download: only a fresh checkin (a new URL) can help.
      expect(server.ranges.length).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('retries a 503 SlowDown and gives up naming origin and code', async () => {
    const server = await startImageServer(data, {
      refuse: { status: 503, body: s3ErrorBody('SlowDown', 'Please reduce your request rate.') },
    });
    try {
      const attempt = downloadImage({
        url: server.url,
        size: image.size,
        file: target('503.img'),
        offset: 0,
        stallTimeoutMs: 5000,
        retry: { maxWithoutProgress: 2, baseDelayMs: 10 },
      });
      await expect(attempt).rejects.toThrow(
        `Download failed after 2 attempts: Image download from ${new URL(server.url).origin} answered HTTP 503 SlowDown`,
      );
    } finally {
      await server.close();
    }
  });

  it('names the origin when the connection is refused', async () => {
    const port = await closedPort();
    const attempt = downloadImage({
      url: `http://127.0.0.1:${port}/images/x.bin?X-Amz-Signature=secret`,
      size: 10,
      file: target('refused.img'),
      offset: 0,
      stallTimeoutMs: 1000,
      retry: { maxWithoutProgress: 1 },
    });
    await expect(attempt).rejects.toThrow(
      `Download failed after 1 attempts: Image download from http://127.0.0.1:${port}: ECONNREFUSED`,
    );
  });

  it.each([
    [s3ErrorBody('NoSuchKey', 'The specified key does not exist.'), 'NoSuchKey'],
    ['<Error><Code> AccessDenied </Code></Error>', 'AccessDenied'],
    ['Forbidden', undefined],
    ['<Code>two words</Code>', undefined],
  ])('s3ErrorCode(%j) is %s', (body, code) => {
    expect(s3ErrorCode(body)).toBe(code);
  });
});
