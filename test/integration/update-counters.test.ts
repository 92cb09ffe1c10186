/**
 * An update's per-device counters on real dynalite (issue 13, no hot item): `started` of an update
 * without a limit and the outcome counters spread over counter shards, summed exactly on read
 * under parallel grants; with a limit, `started` stays on the update item and the limit is never
 * exceeded, including a limit added to a rollout whose starts were sharded.
 */

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deleteUpdate, editUpdate, listUpdates } from '#admin/index.ts';
import { openCloud } from '#cli/cloud.ts';
import { createCloud } from '#functions/cloud.ts';
import { keys } from '#functions/keys.ts';
import { foldStartedShards, readUpdate } from '#functions/update-counters.ts';
import { notifyLocalChange } from '#local/cloud-file.ts';
import { checkin, report, seedUpdate, type TestCloud, useTestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
const freshProduct = useTestCloud('counters', (started) => (cloud = started));

/** `count` distinct devices check in all at once; the ids of those granted `updateId`. */
async function checkInAtOnce(
  p: { name: string; token: string },
  prefix: string,
  count: number,
  updateId: string,
) {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      checkin(cloud, { id: `${prefix}${i}`, product: p.name, version: '1.0.0' }, p.token),
    ),
  );
  for (const a of answers) expect(a.status, a.text).toBe(200);
  return answers.flatMap((a, i) => (a.json.update === updateId ? [`${prefix}${i}`] : []));
}

const grantRecords = async (updateId: string) =>
  (await cloud.table.query(keys.grantsOf(updateId).pk, undefined, true)).length;

describe('update counters', () => {
  it('without a limit: 96 parallel grants and their reports are counted exactly, none on the update item', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const granted = await checkInAtOnce(p, 'g', 96, update.id);
    expect(granted).toHaveLength(96);
    const reports = await Promise.all(
      granted.map((id, i) =>
        report(
          cloud,
          { id, update: update.id, success: i % 4 !== 0, status: i % 4 ? 'applied' : 'failed' },
          p.token,
        ),
      ),
    );
    for (const r of reports) expect(r.status, r.text).toBe(200);

    const stored = await readUpdate(cloud.table, p.name, update.id);
    expect(stored?.counters).toMatchObject({ started: 96, success: 72, failure: 24 });
    expect(await grantRecords(update.id)).toBe(96);
    // The update item took none of those writes: they spread over its counter shards.
    const item = await cloud.table.get(keys.update(p.name, update.id), true);
    expect([item?.started ?? 0, item?.success ?? 0, item?.failure ?? 0]).toEqual([0, 0, 0]);
    const shards = keys.updateCountersOf(p.name, update.id);
    expect((await cloud.table.query(shards.pk, shards.skPrefix, true)).length).toBeGreaterThan(16);
    // Admin (list, stats, the console) reads the sums.
    const [listed] = await listUpdates({ table: cloud.table }, p.name);
    expect(listed?.counters).toMatchObject({ started: 96, success: 72, failure: 24 });
  });

  it('with a limit: 80 parallel checkins for 30 places grant exactly 30, counted on the update item', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', limit: 30 });
    const granted = await checkInAtOnce(p, 'l', 80, update.id);
    expect(granted).toHaveLength(30);
    expect(await grantRecords(update.id)).toBe(30);
    expect((await cloud.table.get(keys.update(p.name, update.id), true))?.started).toBe(30);
    expect((await readUpdate(cloud.table, p.name, update.id))?.counters.started).toBe(30);
  });

  it('a limit added to a rollout whose starts were sharded counts them: never exceeded', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect(await checkInAtOnce(p, 'a', 20, update.id)).toHaveLength(20);
    await editUpdate({ table: cloud.table }, { product: p.name, version: '2.0.0' }, { limit: 26 });
    notifyLocalChange(cloud.dataDir);

    expect(await checkInAtOnce(p, 'b', 64, update.id)).toHaveLength(6);
    expect(await grantRecords(update.id)).toBe(26);
    expect((await readUpdate(cloud.table, p.name, update.id))?.counters.started).toBe(26);
  });

  it('a limit added while a container still grants from its cached list (no limit): never exceeded', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const stale = staleContainer();
    const checkinOn = staleCheckin(stale, p.token, p.name);
    expect((await checkinOn('s0')).update).toBe(update.id);
    await editUpdate({ table: cloud.table }, { product: p.name, version: '2.0.0' }, { limit: 4 });
    notifyLocalChange(cloud.dataDir);

    // The stale container's grants and the up-to-date cloud's, meanwhile: 4 in all, not 4 + the stale ones.
    for (let i = 1; i < 8; i++) await checkinOn(`s${i}`);
    await checkInAtOnce(p, 'f', 16, update.id);
    expect(await grantRecords(update.id)).toBeLessThanOrEqual(4);
    expect((await readUpdate(cloud.table, p.name, update.id))?.counters.started).toBe(
      await grantRecords(update.id),
    );
  });

  it('a container refused while a limit was being added grants its places as soon as it sees the limit', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    let clock = Date.now();
    const checkinOn = staleCheckin(
      staleContainer(() => clock),
      p.token,
      p.name,
    );
    expect((await checkinOn('s0')).update).toBe(update.id);
    await editUpdate({ table: cloud.table }, { product: p.name, version: '2.0.0' }, { limit: 4 });
    clock += 29_000;
    expect(await checkinOn('s1')).toEqual({}); // its copy has no limit yet: deferred
    clock += 2_000; // its copy revalidated: the limit of 4, one place taken

    expect((await checkinOn('s2')).update).toBe(update.id);
    expect(await grantRecords(update.id)).toBe(2);
  });

  it('a limit removed again: grants spread over the shards once more, counted with the earlier ones', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect(await checkInAtOnce(p, 'a', 3, update.id)).toHaveLength(3);
    const selector = { product: p.name, version: '2.0.0' };
    await editUpdate({ table: cloud.table }, selector, { limit: 5 });
    notifyLocalChange(cloud.dataDir);
    expect(await checkInAtOnce(p, 'b', 4, update.id)).toHaveLength(2);
    await editUpdate({ table: cloud.table }, selector, { limit: null });
    notifyLocalChange(cloud.dataDir);

    expect(await checkInAtOnce(p, 'c', 6, update.id)).toHaveLength(6);
    expect((await readUpdate(cloud.table, p.name, update.id))?.counters.started).toBe(11);
    expect(await grantRecords(update.id)).toBe(11);
  });

  it('an edit cut off after closing the shards, before its limit: removing the limit opens them again', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect(await checkInAtOnce(p, 'a', 2, update.id)).toHaveLength(2);
    await foldStartedShards(cloud.table, update); // what the cut-off edit did; no limit written
    expect(await checkInAtOnce(p, 'b', 2, update.id)).toHaveLength(0);

    await editUpdate({ table: cloud.table }, { product: p.name, version: '2.0.0' }, { limit: null });
    expect(await checkInAtOnce(p, 'c', 3, update.id)).toHaveLength(3);
    expect((await readUpdate(cloud.table, p.name, update.id))?.counters.started).toBe(5);
  });

  it('a deleted update: a container whose cached list still offers it defers devices, counting nothing', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const stale = createCloud(
      { ...cloud.file, s3Endpoint: cloud.s3Url, urlExpiresSeconds: 3600, updatesCacheSeconds: 30 },
      {
        metrics: () => ({ count() {}, async flush() {} }),
        log: { info() {}, warn() {}, error() {} },
        credentials: () => cloud.file.credentials,
      },
    );
    const checkinOn = async (id: string) => {
      const answer = await stale.app({
        method: 'POST',
        path: '/tok/provision/update',
        headers: { authorization: `Bearer ${p.token}` },
        body: Buffer.from(JSON.stringify({ id, product: p.name, version: '1.0.0' })),
      });
      expect(answer.status, answer.body).toBe(200);
      return JSON.parse(answer.body) as { update?: string };
    };
    expect((await checkinOn('x0')).update).toBe(update.id);
    const admin = openCloud('local', {
      dataDir: cloud.dataDir,
      outputsFile: join(cloud.dataDir, 'none.json'),
    });
    try {
      await deleteUpdate(admin, { product: p.name, version: '2.0.0' });
    } finally {
      admin.close();
    }

    expect(await checkinOn('x1')).toEqual({});
    expect(await grantRecords(update.id)).toBe(1);
    expect(await readUpdate(cloud.table, p.name, update.id)).toBeUndefined();
    const shards = keys.updateCountersOf(p.name, update.id);
    const items = await cloud.table.query(shards.pk, shards.skPrefix, true);
    expect(items.filter((item) => item.started !== undefined)).toEqual([]);
    // The retired shards expire (DynamoDB's TTL) a day later, not read by catalog reloads forever.
    const day = Date.now() / 1000 + 86_400;
    for (const item of items) expect(Math.abs(Number(item.expires) - day)).toBeLessThan(120);
  });
});

/** A container of its own that serves its product's update list from memory for 30 s. */
function staleContainer(now?: () => number) {
  return createCloud(
    { ...cloud.file, s3Endpoint: cloud.s3Url, urlExpiresSeconds: 3600, updatesCacheSeconds: 30 },
    {
      metrics: () => ({ count() {}, async flush() {} }),
      log: { info() {}, warn() {}, error() {} },
      credentials: () => cloud.file.credentials,
      ...(now ? { now } : {}),
    },
  );
}

function staleCheckin(stale: ReturnType<typeof staleContainer>, token: string, product: string) {
  return async (id: string) => {
    const answer = await stale.app({
      method: 'POST',
      path: '/tok/provision/update',
      headers: { authorization: `Bearer ${token}` },
      body: Buffer.from(JSON.stringify({ id, product, version: '1.0.0' })),
    });
    expect(answer.status, answer.body).toBe(200);
    return JSON.parse(answer.body) as { update?: string };
  };
}
