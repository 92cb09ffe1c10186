/**
 * Fleet aggregates on real dynalite (issue 13, items 1 and 4): devices per version exact after
 * devices check in, upgrade (reports) and check in again concurrently through a store that drops
 * requests before or after applying them (the devices retry their 503s), and hourly series that sum
 * to the update's counters.
 */
import { describe, expect, it } from 'vitest';
import { backfillDeviceCounts, productStats, updateFailures } from '#admin/index.ts';
import { PRODUCT_SCOPE, readDeviceCounts, readSeries, SERIES_METRICS } from '#functions/aggregates.ts';
import type { App, AppResponse } from '#functions/app.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { keys } from '#functions/keys.ts';
import { REASON_SHARDS, reasonDigest } from '#functions/report-ledger.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { checkin, report, seedUpdate, type TestCloud, useTestCloud } from '#test/support/cloud.ts';
import { appThrough, type Drop, FaultyDynamoProxy } from '#test/support/dynamo-proxy.ts';

let cloud: TestCloud;

const freshProduct = useTestCloud('agg', (started) => (cloud = started));

/**
 * A proxy to dynalite that drops every `every`-th write: alternately before forwarding it and
 * after dynalite applied it (the answer lost), as a flaky network does.
 */
class DroppingProxy extends FaultyDynamoProxy {
  private writes = 0;
  dropped = { before: 0, after: 0 };
  constructor(
    target: URL,
    private readonly every: number,
  ) {
    super(target);
  }
  protected fate(op: string): Drop | undefined {
    const n = /Put|Update|Delete|Write/.test(op) ? ++this.writes : 0;
    if (n === 0 || n % this.every !== 0) return undefined;
    return (n / this.every) % 2 === 0 ? 'after' : 'before';
  }
  protected override onDrop(when: Drop): void {
    this.dropped[when]++;
  }
}

/**
 * Sends until answered 200, as a device retries a 503 (after a pause: a transaction cut off by a
 * dropped write holds its records until its replay, 5 s later); fails the test after 60 tries.
 */
async function untilOk(app: App, path: string, body: object, token: string): Promise<AppResponse> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const answer = await app({
      method: 'POST',
      path,
      headers: { authorization: token },
      body: Buffer.from(JSON.stringify(body)),
    });
    if (answer.status === 200) return answer;
    expect(answer.status, answer.body).toBe(503);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${path} for ${JSON.stringify(body)} never answered 200 in 60 tries over 18 s`);
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function pool<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

describe('devices per version (13.1)', () => {
  it('stay exact while 300 devices check in, upgrade and check in again through a dropping store', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', percentage: 50 });
    const proxy = new DroppingProxy(new URL(cloud.file.dynamoEndpoint), 7);
    await proxy.open();
    try {
      // Two containers, as Lambda would run them, both through the flaky network.
      const apps = [appThrough(cloud, proxy), appThrough(cloud, proxy)];
      const ids = Array.from({ length: 300 }, (_, i) => `d${i}`);
      await pool(ids, 24, async (id) => {
        const app = apps[Number(id.slice(1)) % 2]!;
        const other = apps[(Number(id.slice(1)) + 1) % 2]!;
        const dev = { id, product: p.name, version: '1.0.0' };
        // The same device checks in twice at once, on both containers.
        const [first] = await Promise.all([
          untilOk(app, '/tok/provision/update', dev, p.token),
          untilOk(other, '/tok/provision/update', dev, p.token),
        ]);
        if (!JSON.parse(first.body).update) return;
        const applied = { id, update: update.id, success: true, status: 'applied', version: '2.0.0' };
        await Promise.all([
          untilOk(app, '/tok/provision/updateReport', applied, p.token),
          untilOk(other, '/tok/provision/update', { ...dev, version: '2.0.0' }, p.token),
        ]);
      });
    } finally {
      await proxy.close();
    }
    expect(proxy.dropped.before + proxy.dropped.after).toBeGreaterThan(20);
    await recoverIntents(cloud.table); // what a restart finishes of transactions cut off

    const registry = await cloud.table.query(keys.devicesOf(p.name).pk, undefined, true);
    const truth = new Map<string, number>();
    for (const d of registry) truth.set(String(d.version), (truth.get(String(d.version)) ?? 0) + 1);
    const counts = await readDeviceCounts(cloud.table, p.name);
    const upgraded = truth.get('2.0.0') ?? 0;
    expect(upgraded, 'about half the devices are in the 50% rollout').toBeGreaterThan(100);
    expect(Object.fromEntries(counts.versions.map((v) => [v.version, v.devices]))).toEqual({
      '1.0.0': 300 - upgraded,
      '2.0.0': upgraded,
    });
    expect(counts.devices).toBe(300);
    // Each device on the day under the version of its latest checkin: the upgraded ones moved too.
    expect(counts.seenPerDay).toEqual([
      {
        day: new Date().toISOString().slice(0, 10),
        devices: 300,
        versions: { '1.0.0': 300 - upgraded, '2.0.0': upgraded },
      },
    ]);
  });
});

describe('hourly series (13.1)', () => {
  it('sum to the update counters, and the product series to every checkin', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', percentage: 60 });
    let checkins = 0;
    for (let i = 0; i < 40; i++) {
      const dev = { id: `s${i}`, product: p.name, version: '1.0.0' };
      const answer = await checkin(cloud, dev, p.token);
      checkins++;
      if (answer.json.update !== update.id) continue;
      const success = i % 3 !== 0;
      const status = success ? 'applied' : 'failed';
      expect((await report(cloud, { id: dev.id, update: update.id, success, status }, p.token)).status).toBe(
        200,
      );
      await checkin(cloud, { ...dev, version: success ? '2.0.0' : '1.0.0' }, p.token);
      checkins++;
    }
    await cloud.flush();
    const stored = (await readUpdate(cloud.table, p.name, update.id))!.counters;
    const series = await readSeries(cloud.table, p.name, 2, Date.now());
    const total = (points: typeof series.product) =>
      Object.fromEntries(SERIES_METRICS.map((n) => [n, points.reduce((sum, point) => sum + point[n], 0)]));
    expect(series.product.map((point) => point.hour)).toHaveLength(2);
    expect(total(series.updates[update.id] ?? [])).toEqual({
      UpdateRequests: 0,
      UpdateDeferred: stored.deferred,
      UpdateStarted: stored.started,
      UpdateSuccess: stored.success,
      UpdateFailure: stored.failure,
    });
    expect(stored.started).toBeGreaterThan(5);
    expect(stored.deferred).toBeGreaterThan(5);
    // What it can reach: the 40 devices below 2.0.0 or moved by it, in its 60% share.
    const stats = await productStats({ table: cloud.table }, p.name);
    expect(stats.updates.find((u) => u.id === update.id)?.eligible).toBe(Math.max(24, stored.started));
    expect(total(series.product)).toMatchObject({ UpdateRequests: checkins, UpdateStarted: stored.started });
    expect(PRODUCT_SCOPE in series.updates).toBe(false);
  });
});

describe('eligible estimate of the progress bars', () => {
  it('of a phased update whose stored plan no longer parses is 0 (it admits nobody new), the stats still answer', async () => {
    const p = await freshProduct();
    await checkin(cloud, { id: 'x1', product: p.name, version: '1.0.0' }, p.token);
    await cloud.flush();
    const broken = await seedUpdate(cloud, { product: p.name, version: '2.0.0', phases: '5 percent' });
    const stats = await productStats({ table: cloud.table }, p.name);
    expect(stats.devices).toBe(1);
    expect(stats.updates.find((u) => u.id === broken.id)?.eligible).toBe(0);
  });

  it('counts the devices above a downgrade, which selection offers it (DESIGN §4.3)', async () => {
    const p = await freshProduct();
    const versions = [...Array(10).fill('2.0.0'), ...Array(4).fill('1.0.0'), '1.5.0'];
    for (const [i, version] of versions.entries())
      await checkin(cloud, { id: `e${i}`, product: p.name, version }, p.token);
    await cloud.flush();
    const back = await seedUpdate(cloud, {
      product: p.name,
      version: '1.5.0',
      allowDowngrade: true,
      policy: 'id != "none"',
    });
    const forward = await seedUpdate(cloud, { product: p.name, version: '1.6.0', enabled: false });
    const stats = await productStats({ table: cloud.table }, p.name);
    const eligible = (id: string) => stats.updates.find((u) => u.id === id)?.eligible;
    // Every device but the one already on 1.5.0; without allowDowngrade only those below.
    expect(eligible(back.id)).toBe(14);
    expect(eligible(forward.id)).toBe(5);
  });
});

describe('backfill of a cloud without aggregates (13.6) and stats from aggregates (13.4)', () => {
  it('counts each old registry entry once, run twice at once while some of those devices check in', async () => {
    const p = await freshProduct();
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    // Entries as the previous version wrote them: no `counted` mark, no counts.
    await cloud.table.putMany(
      Array.from({ length: 120 }, (_, i) => ({
        ...keys.device(p.name, `old${i}`),
        version: i < 80 ? '1.0.0' : '0.9.0',
        lastSeen: yesterday,
        properties: '{}',
      })),
    );
    expect((await productStats({ table: cloud.table }, p.name)).devices).toBe(0);
    const live = Array.from({ length: 30 }, (_, i) =>
      checkin(cloud, { id: `old${i * 4}`, product: p.name, version: '1.1.0' }, p.token),
    );
    const [first, second] = await Promise.all([
      backfillDeviceCounts({ table: cloud.table }, p.name),
      backfillDeviceCounts({ table: cloud.table }, p.name),
      ...live,
    ]);
    await cloud.flush();
    expect(first.devices).toBe(120);
    expect(first.counted + second.counted).toBeLessThanOrEqual(120);
    expect((await backfillDeviceCounts({ table: cloud.table }, p.name)).counted).toBe(0);

    const stats = await productStats({ table: cloud.table }, p.name, { days: 3, hours: 5 });
    expect(stats.devices).toBe(120);
    // 30 of the 80 devices on 1.0.0 moved to 1.1.0 (every fourth id below 120 is below 80 too for i < 20).
    const moved = Array.from({ length: 30 }, (_, i) => i * 4);
    expect(stats.versions.map((v) => [v.version, v.devices])).toEqual([
      ['1.1.0', 30],
      ['1.0.0', 80 - moved.filter((n) => n < 80).length],
      ['0.9.0', 40 - moved.filter((n) => n >= 80).length],
    ]);
    expect(stats.seen).toEqual([
      { day: new Date().toISOString().slice(0, 10), devices: 30, versions: { '1.1.0': 30 } },
      { day: yesterday.slice(0, 10), devices: 120, versions: { '1.0.0': 80, '0.9.0': 40 } },
    ]);
    expect(stats.hours).toBe(5);
    expect(stats.series.product).toHaveLength(5);
    expect(stats.series.product.at(-1)?.UpdateRequests).toBe(30);
  });

  it('groups failures recorded before failure groups by reason, once, run twice at once and again', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const errors = ['boot loop', 'boot loop', 'boot loop', 'disk full', 'disk full', 'lost'];
    for (const [i, error] of [...errors, undefined, undefined].entries()) {
      const id = `f${i}`;
      expect((await checkin(cloud, { id, product: p.name, version: '1.0.0' }, p.token)).json.update).toBe(
        update.id,
      );
      const sent = {
        id,
        update: update.id,
        success: error === undefined,
        error,
        status: error ? 'failed' : 'applied',
      };
      expect((await report(cloud, sent, p.token)).status).toBe(200);
    }
    // As the previous version left them: failures on the grants, no groups; f5's report kept no error.
    for (const [i, error] of errors.entries()) {
      const id = `f${i}`;
      await cloud.table.update(keys.grant(update.id, id), { remove: ['failedReason', 'failedAt', 'error'] });
      for (let shard = 0; shard < REASON_SHARDS; shard++)
        await cloud.table.deletePartition(keys.failedDevicesOf(update.id, reasonDigest(error), shard).pk);
    }
    await cloud.table.deletePartition(keys.failureReasonsOf(update.id).pk);
    await cloud.table.update(keys.report(update.id, 'f5', 'failed'), { remove: ['error'] });
    const selector = { product: p.name, version: '2.0.0' };
    expect((await updateFailures({ table: cloud.table }, selector)).reasons).toEqual([]);

    const runs = await Promise.all([0, 1].map(() => backfillDeviceCounts({ table: cloud.table }, p.name)));
    expect(runs[0]!.failures + runs[1]!.failures).toBe(6);
    expect((await backfillDeviceCounts({ table: cloud.table }, p.name)).failures).toBe(0);
    const grouped = (await updateFailures({ table: cloud.table }, selector)).reasons;
    expect(grouped.map((r) => [r.error, r.devices, r.latest.map((d) => d.id).sort()])).toEqual([
      ['boot loop', 3, ['f0', 'f1', 'f2']],
      ['disk full', 2, ['f3', 'f4']],
      ['', 1, ['f5']],
    ]);
    // A grouped device that then succeeds leaves its group, as any other failure would.
    await report(cloud, { id: 'f1', update: update.id, success: true, status: 'applied' }, p.token);
    const after = (await updateFailures({ table: cloud.table }, selector)).reasons;
    expect(Object.fromEntries(after.map((r) => [r.error, r.devices]))).toEqual({
      'boot loop': 2,
      'disk full': 2,
      '': 1,
    });
  });

  it('still reads the days counted on the version shards by the previous version (d_yyyymmdd)', async () => {
    const p = await freshProduct();
    const now = Date.now();
    const yesterday = new Date(now - 86_400_000).toISOString().slice(0, 10);
    const legacy = `d_${yesterday.replaceAll('-', '')}`;
    await cloud.table.update(keys.deviceCounts(p.name, 3), { add: { v_1_2e0_2e0: 2, [legacy]: 2 } });
    await cloud.table.update(keys.deviceCounts(p.name, 7), { add: { v_1_2e0_2e0: 1, [legacy]: 1 } });
    await checkin(cloud, { id: 'new-one', product: p.name, version: '1.0.0' }, p.token);
    await cloud.flush();
    const counts = await readDeviceCounts(cloud.table, p.name, 3, now);
    expect(counts.devices).toBe(4);
    expect(counts.seenPerDay).toEqual([
      { day: new Date(now).toISOString().slice(0, 10), devices: 1, versions: { '1.0.0': 1 } },
      { day: yesterday, devices: 3, versions: {} },
    ]);
    // The backfill moves them onto day items, once: the version shards keep only their versions.
    const [first, second] = await Promise.all([
      backfillDeviceCounts({ table: cloud.table }, p.name),
      backfillDeviceCounts({ table: cloud.table }, p.name),
    ]);
    expect(first.days + second.days).toBe(2);
    expect((await backfillDeviceCounts({ table: cloud.table }, p.name)).days).toBe(0);
    expect(await readDeviceCounts(cloud.table, p.name, 3, now)).toEqual(counts);
    const shards = await cloud.table.query(
      keys.deviceCountsOf(p.name).pk,
      keys.deviceCountsOf(p.name).skPrefix,
    );
    expect(shards.flatMap((item) => Object.keys(item).filter((name) => name.startsWith('d_')))).toEqual([]);
  });

  it('refuses an hour count beyond the retention with a one-line error', async () => {
    await expect(productStats({ table: cloud.table }, 'demo', { hours: 5000 })).rejects.toThrow(
      'Invalid --hours 5000: use a whole number from 1 to 2160',
    );
  });
});
