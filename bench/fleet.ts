/**
 * `fleet-overview` (DESIGN §9, §10): the stats answer (admin's productStats, what `updraft stats`
 * and the console show) for a product with 100,000 registered devices beside one with 100, in the
 * same run against the local cloud's dynalite. The registry and the aggregates are seeded directly
 * through the store adapter, as the checkins would have left them (one registry entry per device,
 * the device count shards, 48 hours of series). A ratio near 1 shows the answer is O(1) in fleet
 * size; the target is ≤ 1.5×.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { productStats } from '#admin/index.ts';
import { countWrites, hourOf, PRODUCT_SCOPE, seriesWrite } from '#functions/aggregates.ts';
import { AGGREGATES } from '#functions/config.ts';
import type { Key, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { startLocalCloud } from '#local/cloud.ts';
import { seedUpdate } from '#test/support/cloud.ts';
import type { BenchRow, BenchSuite } from './row.ts';

const LARGE = 100_000;
const SMALL = 100;
const VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '2.0.0'];

/** Registry entries and their counts, as `devices` first checkins today would have written them. */
async function seedFleet(table: Table, product: string, devices: number, now: number): Promise<void> {
  const lastSeen = new Date(now).toISOString();
  const counts = new Map<string, { key: Key; add: Record<string, number> }>();
  const entries = [];
  for (let i = 0; i < devices; i++) {
    const id = `dev-${i}`;
    const version = VERSIONS[i % VERSIONS.length]!;
    entries.push({
      ...keys.device(product, id),
      version,
      lastSeen,
      properties: '{"region":"eu"}',
      counted: true,
    });
    for (const write of countWrites(product, id, undefined, { version, lastSeen })) {
      if ('put' in write) continue;
      const sums = counts.get(write.key.sk) ?? { key: write.key, add: {} };
      for (const [name, n] of Object.entries(write.update.add ?? {}))
        sums.add[name] = (sums.add[name] ?? 0) + n;
      counts.set(write.key.sk, sums);
    }
  }
  for (let at = 0; at < entries.length; at += 2500) await table.putMany(entries.slice(at, at + 2500));
  for (const { key, add } of counts.values()) await table.update(key, { add });
}

async function seedSeries(table: Table, product: string, updateId: string, now: number): Promise<void> {
  for (let h = 0; h < 48; h++) {
    const hour = hourOf(now - h * 3_600_000);
    for (let shard = 0; shard < AGGREGATES.shards; shard++) {
      for (const scope of [PRODUCT_SCOPE, updateId]) {
        const { key, update } = seriesWrite(
          product,
          hour,
          scope,
          { UpdateRequests: 10, UpdateDeferred: 5 },
          shard,
        );
        await table.update(key, update);
      }
    }
  }
}

/** Median milliseconds of `runs` stats answers (after one warm-up). */
async function answerMs(table: Table, product: string, runs = 15): Promise<number> {
  await productStats({ table }, product, { hours: 48 });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await productStats({ table }, product, { hours: 48 });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export const suite: BenchSuite = async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'updraft-bench-fleet-'));
  const quiet = { info() {}, warn() {}, error() {} };
  const cloud = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
  try {
    const now = Date.now();
    const seeded = { s3Url: cloud.s3Url, table: cloud.table, dataDir };
    for (const [product, devices] of [
      ['small', SMALL],
      ['large', LARGE],
    ] as const) {
      const update = await seedUpdate(seeded, { product, version: '2.0.0' });
      await seedFleet(cloud.table, product, devices, now);
      await seedSeries(cloud.table, product, update.id, now);
    }
    const large = (await productStats({ table: cloud.table }, 'large')).devices;
    if (large !== LARGE) throw new Error(`seeded ${LARGE} devices, stats counted ${large}`);
    // Interleaved, so that neither side gets the quieter moment of a shared machine.
    const small: number[] = [];
    const big: number[] = [];
    for (let round = 0; round < 3; round++) {
      small.push(await answerMs(cloud.table, 'small'));
      big.push(await answerMs(cloud.table, 'large'));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const row: BenchRow = {
      name: 'fleet-overview',
      value: median(big),
      unit: 'ms',
      baseline: `the same answer with ${SMALL} registered devices`,
      baselineValue: median(small),
      better: 'lower',
      detail: `${LARGE.toLocaleString('en-US')} devices, 4 versions, 48 h of series; target ≤ 1.5×`,
    };
    return [row];
  } finally {
    await cloud.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
};
