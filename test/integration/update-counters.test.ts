/**
 * An update's per-device counters on real dynalite (issue 13, no hot item): `started` of an update
 * without a limit and the outcome counters spread over counter shards, summed exactly on read
 * under parallel grants; with a limit, `started` stays on the update item and the limit is never
 * exceeded, including a limit added to a rollout whose starts were sharded.
 */
import { describe, expect, it } from 'vitest';
import { editUpdate, listUpdates } from '#admin/index.ts';
import { keys } from '#functions/keys.ts';
import { readUpdate } from '#functions/update-counters.ts';
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
});
