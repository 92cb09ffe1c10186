/**
 * Checkin throughput: the handler in-process and the local server end to end, each beside a bare
 * node:http server answering `{}` measured in the same run with the same load generator.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCloud } from '#functions/cloud.ts';
import { createToken } from '#functions/tokens.ts';
import { startLocalCloud } from '#local/cloud.ts';
import { seedUpdate } from '#test/support/cloud.ts';
import { runLoad } from './load.ts';
import type { BenchRow, BenchSuite } from './row.ts';

const DEVICES = 1000;
const quiet = { info() {}, warn() {}, error() {} };

async function bareNodeHttp(durationMs: number): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const result = await runLoad({
    url: `http://127.0.0.1:${port}/tok/provision/update`,
    body: (i) => JSON.stringify({ id: `dev-${i % DEVICES}`, product: 'demo', version: '1.0.0' }),
    durationMs,
  });
  server.close();
  return result.perSecond;
}

/** Calls the app in a closed loop with `concurrency` requests in flight; returns calls/s. */
async function inProcess(
  call: (i: number) => Promise<unknown>,
  durationMs: number,
  concurrency = 32,
): Promise<number> {
  let n = 0;
  const deadline = performance.now() + durationMs;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) await call(n++);
    }),
  );
  return (n / (performance.now() - start)) * 1000;
}

export const suite: BenchSuite = async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'updraft-bench-'));
  const cloud = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
  const rows: BenchRow[] = [];
  try {
    // 50 updates for product "many"; device versions 1.0.0 get the newest; "none" has nothing for them.
    const { token: manyToken } = await createToken(cloud.table, { product: 'many' });
    for (let i = 1; i <= 50; i++) {
      await seedUpdate(
        { ...cloud, dataDir },
        { product: 'many', version: `1.${i}.0`, policy: i % 2 ? 'region == "eu"' : '' },
      );
    }
    const lambdaLike = createCloud(
      {
        tableName: cloud.file.tableName,
        bucketName: cloud.file.bucketName,
        region: cloud.file.region,
        dynamoEndpoint: cloud.file.dynamoEndpoint,
        s3Endpoint: cloud.s3Url,
        urlExpiresSeconds: 3600,
        updatesCacheSeconds: 30,
      },
      {
        metrics: () => ({ count() {}, async flush() {} }),
        log: quiet,
        credentials: () => cloud.file.credentials,
      },
    );
    const request = (product: string, token: string, version: string) => (i: number) =>
      lambdaLike.app({
        method: 'POST',
        path: '/tok/provision/update',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ id: `dev-${i % DEVICES}`, product, version, region: 'us' })),
      });
    const noUpdate = request('demo', cloud.devToken, '1.0.0');
    const update = request('many', manyToken, '1.0.0');
    // Warm the registry cache and containers' caches as a long-running container would be.
    for (let i = 0; i < DEVICES; i++) await noUpdate(i);
    for (let i = 0; i < DEVICES; i++) await update(i);

    const bare1 = await bareNodeHttp(2000);
    const handlerNone = await inProcess(noUpdate, 2000);
    const handlerUpdate = await inProcess(update, 2000);
    rows.push({
      name: 'checkin-handler',
      value: handlerNone,
      unit: 'checkins/s',
      baseline: 'bare node:http answering {} over loopback',
      baselineValue: bare1,
      better: 'higher',
      detail: `no-update path; update path with 50 updates: ${Math.round(handlerUpdate)}/s`,
    });

    const body = (i: number) =>
      JSON.stringify({ id: `dev-${i % DEVICES}`, product: 'demo', version: '1.0.0' });
    // The local server keeps caches of its own (the warm-up above went through another instance):
    // 2 s of load first (every device several times, its HTTP path compiled), so the measured window
    // is the steady state, as for the handler.
    await runLoad({
      url: `${cloud.apiUrl}/tok/provision/update`,
      body,
      headers: { authorization: `Bearer ${cloud.devToken}` },
      durationMs: 2000,
    });
    const local = await runLoad({
      url: `${cloud.apiUrl}/tok/provision/update`,
      body,
      headers: { authorization: `Bearer ${cloud.devToken}` },
      durationMs: 3000,
    });
    const bare2 = await bareNodeHttp(3000);
    rows.push({
      name: 'checkin-local',
      value: local.perSecond,
      unit: 'checkins/s',
      baseline: 'bare node:http answering {} over loopback',
      baselineValue: bare2,
      better: 'higher',
      detail: `no-update path, 32 connections, p50 ${local.p50Ms.toFixed(2)} ms, p99 ${local.p99Ms.toFixed(2)} ms, errors ${local.errors}`,
    });
  } finally {
    await cloud.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
};
