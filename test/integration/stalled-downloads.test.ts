/**
 * Downloads nobody reads (issue 11 item 6): a client that asks for an image with a valid presigned
 * URL and then reads nothing holds a connection that is neither idle nor slow to send its request,
 * so neither eviction nor the request timeouts reach it. Enough of them would fill the image
 * listener's connection cap and lock devices out; they are closed once no byte has moved for the
 * idle timeout.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, startLocalCloud } from '#local/cloud.ts';
import { checkin, seedUpdate } from '#test/support/cloud.ts';
import { until } from '#test/support/wait.ts';

/** Larger than what loopback socket buffers take in, so the server's writes stall. */
const IMAGE_BYTES = 32 * 1024 * 1024;
const CAP = 8;
const warnings: Record<string, unknown>[] = [];
let dataDir: string;
let cloud: LocalCloud;
const stalled: Socket[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'updraft-stalled-'));
  const log = {
    info() {},
    warn: (_: string, fields: Record<string, unknown> = {}) => warnings.push(fields),
    error() {},
  };
  cloud = await startLocalCloud({
    dataDir,
    port: 0,
    s3Port: 0,
    log,
    limits: { maxConnections: CAP, idleTimeoutMs: 1000 },
  });
  await seedUpdate({ ...cloud, dataDir }, { version: '1.1.0' }, Buffer.alloc(IMAGE_BYTES, 1));
});

afterAll(async () => {
  for (const s of stalled) s.destroy();
  await cloud?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('downloads nobody reads', () => {
  it('cannot hold the image listener at its connection cap past the idle timeout', async () => {
    const answer = await checkin(cloud, { id: 'dev', product: 'demo', version: '1.0.0' });
    const url = new URL(String(answer.json.url));
    for (let i = 0; i < CAP; i++) {
      const socket = connect(Number(url.port), url.hostname);
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
      await once(socket, 'data');
      socket.pause();
      stalled.push(socket);
    }
    const downloads = async () => {
      const image = await fetch(url).catch(() => undefined);
      return (await image?.arrayBuffer())?.byteLength === IMAGE_BYTES;
    };
    await until(downloads, 6000, 'a device download past the unread ones');
    await cloud.stop();
    const images = warnings.find((fields) => fields.listener === 'images');
    expect(Number(images?.stalled), JSON.stringify(warnings)).toBeGreaterThan(0);
  });
});
