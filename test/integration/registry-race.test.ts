/**
 * One device checking in concurrently with itself (a client retrying, or two processes sharing an
 * id) races on its registry entry and its count shard. Device input never causes a 5xx (DESIGN §2):
 * the checkin is answered even when the registry write loses every race.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeviceCounts } from '#functions/aggregates.ts';
import { keys } from '#functions/keys.ts';
import { checkin, freshProduct, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(async () => {
  await cloud?.dispose();
});

describe('a device checking in concurrently with itself', () => {
  it('is answered 200 every time, and counted once', async () => {
    const product = await freshProduct(cloud, 'race');
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        checkin(cloud, { id: 'd1', product: product.name, version: `1.0.${i}` }, product.token),
      ),
    );
    const failed = answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.text.trim()}`);
    expect(failed, 'checkins not answered 200').toEqual([]);
    const counts = await readDeviceCounts(cloud.table, product.name);
    const entry = await cloud.table.get(keys.device(product.name, 'd1'), true);
    expect(counts.versions.map((v) => [v.version, v.devices])).toEqual([[entry?.version, 1]]);
  });
});
