/**
 * Slow clients against the local cloud (issue 11 item 6): sockets that trickle their headers or
 * their body, more of them than the listeners' connection cap, on the API and the image listener
 * and the embedded DynamoDB's. Devices still check in and download, the slow sockets are closed
 * within seconds, and the log gets one summary line per listener, not a stack trace per request.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, startLocalCloud } from '#local/cloud.ts';
import { checkin, seedUpdate } from '#test/support/cloud.ts';

const CAP = 40;
const SLOW_PER_LISTENER = 60;
const warnings: { message: string; fields: Record<string, unknown> }[] = [];
const errors: string[] = [];
const log = {
  info() {},
  warn: (message: string, fields: Record<string, unknown> = {}) => warnings.push({ message, fields }),
  error: (message: string) => errors.push(message),
};

let dataDir: string;
let cloud: LocalCloud;
const slow: Socket[] = [];
const trickles: NodeJS.Timeout[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'updraft-slow-'));
  cloud = await startLocalCloud({
    dataDir,
    port: 0,
    s3Port: 0,
    log,
    limits: { maxConnections: CAP, headersTimeoutMs: 2000, requestTimeoutMs: 3000 },
  });
  await seedUpdate({ ...cloud, dataDir }, { version: '1.1.0' }, Buffer.from('image bytes'));
});

afterAll(async () => {
  for (const t of trickles) clearInterval(t);
  for (const s of slow) s.destroy();
  await cloud?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Opens a socket that sends `head` and then one byte every 200 ms, never finishing. */
async function trickle(url: string, head: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(head);
  const timer = setInterval(() => socket.writable && socket.write('x'), 200);
  trickles.push(timer);
  socket.once('close', () => clearInterval(timer));
  slow.push(socket);
  return socket;
}

function closedWithin(socket: Socket, ms: number): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a slow socket was still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('slow clients', () => {
  it('cannot lock devices out, and are closed within seconds', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < SLOW_PER_LISTENER; i++) {
      // Headers that never end, and a body that never ends.
      const api =
        i % 2 === 0
          ? 'POST /tok/provision/update HTTP/1.1\r\nHost: x\r\nX-Slow: '
          : 'POST /tok/provision/update HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n';
      sockets.push(await trickle(cloud.apiUrl, api));
      sockets.push(await trickle(cloud.s3Url, 'GET /updraft-images/x HTTP/1.1\r\nHost: x\r\nX-Slow: '));
      // The embedded DynamoDB listens on loopback, in the same process and fd table.
      sockets.push(await trickle(cloud.file.dynamoEndpoint, 'POST / HTTP/1.1\r\nHost: x\r\nX-Slow: '));
    }
    const opened = Date.now();

    const answer = await checkin(cloud, { id: 'dev-1', product: 'demo', version: '1.0.0' });
    expect(answer.status, answer.text).toBe(200);
    const image = await fetch(String(answer.json.url));
    expect(image.status).toBe(200);
    expect(await image.text()).toBe('image bytes');

    // Headers within 2 s, bodies within 3 s here (5 s and 10 s by default); Node looks every second.
    await Promise.all(sockets.map((s) => closedWithin(s, 5000 - (Date.now() - opened))));
    await cloud.stop();
    const drops = warnings.filter((w) => w.message === 'clients dropped');
    expect(drops.map((w) => w.fields.listener).sort()).toEqual(['api', 'dynamodb', 'images']);
    // Past the cap, new connections made room by closing the longest-idle slow ones.
    for (const w of drops) expect(Number(w.fields.evicted), JSON.stringify(w.fields)).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  }, 20_000);
});
