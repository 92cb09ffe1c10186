/**
 * Faults of the cloud (issue 7): DynamoDB unreachable mid-run → 503 with Retry-After and nothing
 * recorded half; reachable again → service resumes with state intact; the local cloud killed with
 * SIGKILL during writes → a restart loses no acknowledged grant or report.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeviceCounts } from '#functions/aggregates.ts';
import { createCloud } from '#functions/cloud.ts';
import { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { checkin, report, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { cloudFileOf, spawnLocalCloud } from '#test/support/local-process.ts';
import { until } from '#test/support/wait.ts';

/** A TCP proxy that can be cut (every connection destroyed, new ones refused) and restored. */
class Cuttable {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: number) {}
  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}

describe('DynamoDB unreachable mid-run', () => {
  let cloud: TestCloud;
  let proxy: Cuttable;
  beforeAll(async () => {
    cloud = await startTestCloud();
    proxy = new Cuttable(Number(new URL(cloud.file.dynamoEndpoint).port));
    await proxy.open();
  });
  afterAll(async () => {
    await proxy.cut();
    await cloud.dispose();
  });

  it('answers 503 + Retry-After while it is down, records nothing half, and resumes with state intact', async () => {
    const update = await seedUpdate(cloud, { version: '1.1.0' });
    const errors: unknown[] = [];
    const app = createCloud(
      {
        ...cloud.file,
        dynamoEndpoint: `http://127.0.0.1:${proxy.port}`,
        s3Endpoint: cloud.s3Url,
        urlExpiresSeconds: 3600,
        updatesCacheSeconds: 0,
      },
      {
        metrics: () => ({ count() {}, async flush() {} }),
        log: { info() {}, warn() {}, error: (m: string) => errors.push(m) },
        credentials: () => cloud.file.credentials,
      },
    );
    const call = (path: string, body: object) =>
      app.app({
        method: 'POST',
        path,
        headers: { authorization: cloud.devToken },
        body: Buffer.from(JSON.stringify(body)),
      });
    const granted = await call('/tok/provision/update', { id: 'a', product: 'demo', version: '1.0.0' });
    expect(JSON.parse(granted.body).update).toBe(update.id);

    await proxy.cut();
    const during = await call('/tok/provision/update', { id: 'b', product: 'demo', version: '1.0.0' });
    expect(during.status).toBe(503);
    expect(during.headers['retry-after']).toMatch(/^\d+$/);
    expect(during.body).toBe('Service unavailable, retry later\n');
    const reportDuring = await call('/tok/provision/updateReport', {
      id: 'a',
      update: update.id,
      success: true,
    });
    expect(reportDuring.status).toBe(503);
    expect(errors.length).toBeGreaterThanOrEqual(2);

    await proxy.open();
    const after = await call('/tok/provision/update', { id: 'b', product: 'demo', version: '1.0.0' });
    expect(JSON.parse(after.body).update).toBe(update.id);
    expect(
      (await call('/tok/provision/updateReport', { id: 'a', update: update.id, success: true })).status,
    ).toBe(200);
    expect(
      (await call('/tok/provision/updateReport', { id: 'a', update: update.id, success: true })).status,
    ).toBe(200);
    const stored = (await readUpdate(cloud.table, 'demo', update.id))!;
    expect(stored.counters).toMatchObject({ started: 2, success: 1 });
  });
});

describe('local cloud killed with SIGKILL during writes', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'updraft-kill-'));
  const start = () => spawnLocalCloud(dataDir, 'ignore');
  const ready = (child: ChildProcess) => cloudFileOf(dataDir, child);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('loses no acknowledged grant or report', async () => {
    const first = start();
    const file = await ready(first);
    const devToken = readFileSync(join(dataDir, 'dev-token'), 'utf8').trim();
    const table = new Table({ ...file, endpoint: file.dynamoEndpoint });
    const update = await seedUpdate({ s3Url: file.s3Endpoint, table, dataDir }, { version: '2.0.0' });
    const api = { apiUrl: file.apiUrl, devToken };

    let grants = 0;
    let reports = 0;
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const id = `k${w}-${i}`;
        try {
          if ((await checkin(api, { id, product: 'demo', version: '1.0.0' })).json.update === update.id)
            grants++;
          if ((await report(api, { id, update: update.id, success: true })).status === 200) reports++;
        } catch {
          return; // the connection died with the process: not acknowledged
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    // Killed mid-burst once enough writes were acknowledged, not after a guessed time.
    await until(() => grants >= 20 && reports >= 10, 20_000, '20 acknowledged grants and 10 reports');
    first.kill('SIGKILL');
    stop = true;
    await Promise.all(workers);
    if (first.exitCode === null && first.signalCode === null) await new Promise((r) => first.once('exit', r));
    expect(grants).toBeGreaterThanOrEqual(20);

    const second = start();
    const again = await ready(second);
    try {
      const restarted = new Table({ ...again, endpoint: again.dynamoEndpoint });
      const counters = (await readUpdate(restarted, 'demo', update.id))!.counters;
      expect(counters.started).toBeGreaterThanOrEqual(grants);
      expect(counters.success).toBeGreaterThanOrEqual(reports);
      // The restart finished or undid what the kill cut off: each counter equals its records.
      const grantItems = await restarted.query(keys.grantsOf(update.id).pk, undefined, true);
      expect(counters.started).toBe(grantItems.length);
      expect(counters.success).toBe(grantItems.filter((g) => g.outcome === 'success').length);
      expect(await restarted.query(keys.intents().pk, undefined, true)).toEqual([]);
      // So did the registry's rounds: every acknowledged checkin's entry is stored, and the device
      // counts per version equal the registry's.
      const registry = await restarted.query(keys.devicesOf('demo').pk, undefined, true);
      expect(registry.length).toBeGreaterThanOrEqual(grants);
      const versions: Record<string, number> = {};
      for (const entry of registry)
        versions[String(entry.version)] = (versions[String(entry.version)] ?? 0) + 1;
      const counts = await readDeviceCounts(restarted, 'demo');
      expect(Object.fromEntries(counts.versions.map((v) => [v.version, v.devices]))).toEqual(versions);
      // The token and the update survive too: a new device still gets it.
      const answer = await checkin(
        { apiUrl: again.apiUrl, devToken },
        { id: 'new', product: 'demo', version: '1.0.0' },
      );
      expect(answer.json.update).toBe(update.id);
    } finally {
      const exited = new Promise((r) => second.once('exit', r));
      second.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
