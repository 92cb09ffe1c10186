/**
 * The local cloud's registry writes counted changes in rounds, many devices per batch intent
 * (functions/registry-rounds.ts, embedded-batch.ts), on real dynalite: about one store write per
 * device, a device checking in several times in one round counted once, a device another writer
 * moved since the round read it retried alone, and counts equal to the registry after the store
 * dies after any write of a round and a restart settles it.
 */
import { describe, expect, it } from 'vitest';
import { countWrites, readDeviceCounts } from '#functions/aggregates.ts';
import { type Item, type Key, Table, type TableClient } from '#functions/dynamo.ts';
import type { DynamoOperation } from '#functions/dynamo-client.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { StoreUnavailableError } from '#functions/errors.ts';
import { keys } from '#functions/keys.ts';
import { DeviceRegistry } from '#functions/registry.ts';
import { LOCAL_REGION } from '#local/cloud.ts';
import { type TestCloud, useTestCloud } from '#test/support/cloud.ts';
import { isWrite, KillingProxy } from '#test/support/dynamo-proxy.ts';
import { until } from '#test/support/wait.ts';

let cloud: TestCloud;
const freshProduct = useTestCloud('rounds', (started) => (cloud = started));

/** Sends through the cloud's client, counting writes. */
class CountingClient implements TableClient {
  writes = 0;
  constructor(private readonly inner: TableClient) {}
  send<T>(op: DynamoOperation, input: object, options?: { readonly idempotent?: boolean }): Promise<T> {
    if (isWrite(op)) this.writes++;
    return this.inner.send<T>(op, input, options);
  }
  destroy(): void {}
}

/** A table whose first read of `staleId` misses it: as if another writer created it right after. */
class StaleReadTable extends Table {
  private stale = true;
  constructor(
    client: TableClient,
    endpoint: string | undefined,
    private readonly staleId: string,
  ) {
    super({ tableName: cloud.table.name, region: LOCAL_REGION, client, ...(endpoint ? { endpoint } : {}) });
  }
  override async getMany(itemKeys: readonly Key[], consistent?: boolean): Promise<(Item | undefined)[]> {
    const items = await super.getMany(itemKeys, consistent);
    const at = itemKeys.findIndex((key) => key.sk === this.staleId);
    if (this.stale && at >= 0) {
      this.stale = false;
      items[at] = undefined;
    }
    return items;
  }
}

/** A registry as the local cloud runs it (counted changes in rounds), reading `read` and writing `write`. */
const batchingRegistry = (read: Table, write: Table = read) =>
  new DeviceRegistry(read, { refreshMs: 3_600_000, batchMs: 1000, now: Date.now }, write);

const checkinOf = (product: string, id: string, version: string) => ({
  id,
  product,
  version,
  body: { id, product, version },
});

/** Devices per version, as the registry holds them (counted entries) and as the counts say; same for today. */
async function countsAndRegistry(product: string) {
  const byVersion = (entries: Item[]) => {
    const tally: Record<string, number> = {};
    for (const entry of entries) tally[String(entry.version)] = (tally[String(entry.version)] ?? 0) + 1;
    return tally;
  };
  const registry = await cloud.table.query(keys.devicesOf(product).pk, undefined, true);
  const counted = registry.filter((entry) => entry.counted === true);
  const counts = await readDeviceCounts(cloud.table, product);
  const today = new Date().toISOString().slice(0, 10);
  const seenToday = counts.seenPerDay.find((d) => d.day === today);
  return {
    counts: Object.fromEntries(counts.versions.map((v) => [v.version, v.devices])),
    truth: byVersion(counted),
    today: { devices: seenToday?.devices ?? 0, versions: seenToday?.versions ?? {} },
    todayTruth: (() => {
      const seen = counted.filter((entry) => String(entry.lastSeen).startsWith(today));
      return { devices: seen.length, versions: byVersion(seen) };
    })(),
  };
}

describe('counted changes in rounds', () => {
  it('a round of 40 first checkins, one device 5 times with several versions, costs one write per device and 4 more', async () => {
    const p = await freshProduct();
    const client = new CountingClient(cloud.table.client);
    const table = new Table({ tableName: cloud.table.name, region: LOCAL_REGION, client });
    const registry = batchingRegistry(table);
    const checkins = Array.from({ length: 40 }, (_, i) => checkinOf(p.name, `d${i}`, '1.0.0'));
    const twice = ['1.0.1', '1.0.2', '1.0.3', '1.0.4'].map((v) => checkinOf(p.name, 'd0', v));
    await Promise.all([...checkins, ...twice].map((c) => registry.record(c)));
    // 40 entries, the intent, the version counts and today's, and the intent's delete.
    expect(client.writes).toBe(44);
    const { counts, truth } = await countsAndRegistry(p.name);
    expect(counts).toEqual({ '1.0.0': 39, '1.0.4': 1 });
    expect(counts).toEqual(truth);
  });

  it('a device checking in just before and just after midnight, in one round, is seen on both days', async () => {
    const p = await freshProduct();
    const midnight = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
    let now = midnight - 50;
    const registry = new DeviceRegistry(
      cloud.table,
      { refreshMs: 3_600_000, batchMs: 1000, now: () => now },
      cloud.table,
    );
    const late = registry.record(checkinOf(p.name, 'midnight', '1.0.0'));
    now = midnight + 50;
    const early = registry.record(checkinOf(p.name, 'midnight', '1.1.0'));
    await Promise.all([late, early]);

    const counts = await readDeviceCounts(cloud.table, p.name, 2, midnight);
    const seen = Object.fromEntries(counts.seenPerDay.map((d) => [d.day, d.versions]));
    expect(seen[new Date(midnight - 50).toISOString().slice(0, 10)]).toEqual({ '1.0.0': 1 });
    expect(seen[new Date(midnight).toISOString().slice(0, 10)]).toEqual({ '1.1.0': 1 });
    expect(Object.fromEntries(counts.versions.map((v) => [v.version, v.devices]))).toEqual({ '1.1.0': 1 });
  });

  it('a device another writer created since the round read it is retried alone; the others stay counted', async () => {
    const p = await freshProduct();
    const table = new StaleReadTable(cloud.table.client, cloud.table.endpoint, 'moved');
    const registry = batchingRegistry(table);
    await batchingRegistry(cloud.table).record(checkinOf(p.name, 'moved', '1.0.0'));
    await Promise.all(
      ['a', 'b', 'moved'].map((id) =>
        registry.record(checkinOf(p.name, id, id === 'moved' ? '2.0.0' : '1.0.0')),
      ),
    );
    const { counts, truth } = await countsAndRegistry(p.name);
    expect(counts).toEqual({ '1.0.0': 2, '2.0.0': 1 });
    expect(counts).toEqual(truth);
    expect(await cloud.table.query(keys.intents().pk, undefined, true)).toEqual([]);
  });
});

describe('a round cut off after any of its writes, then a restart', () => {
  /**
   * One round: new devices n1 and n2, `moving` from 1.0.0 to 1.1.0, `yesterday` (counted the day
   * before), `old` (an entry of a cloud without aggregates), `twice` (two checkins) and `stale`,
   * whose entry is created after the round read it (left out: the decision is written). Thirteen
   * writes: the intent, seven entries, the decision, the counts (versions, today, and yesterday for
   * `old`) and the intent's delete; then `stale` alone in the next round, five: the intent, its
   * entry, its counts (versions, today) and the delete.
   */
  const killPoints = Array.from({ length: 19 }, (_, i) => i + 1); // 19: no kill

  it.each(killPoints)(
    'killed after write %i: counts equal the registry, before and after the retries',
    async (n) => {
      const p = await freshProduct();
      const healthy = batchingRegistry(cloud.table);
      await healthy.record(checkinOf(p.name, 'moving', '1.0.0'));
      await healthy.record(checkinOf(p.name, 'stale', '1.0.0'));
      const yesterday = new Date(Date.now() - 86_400_000).toISOString();
      const entry = { ...keys.device(p.name, 'yesterday'), version: '1.0.0', lastSeen: yesterday };
      await cloud.table.put({ ...entry, properties: '{}', counted: true });
      for (const write of countWrites(p.name, 'yesterday', undefined, entry))
        if ('key' in write) await cloud.table.update(write.key, write.update);
      await cloud.table.put({
        ...keys.device(p.name, 'old'),
        version: '0.9.0',
        lastSeen: yesterday,
        properties: '{}',
      });

      const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint));
      await proxy.open();
      const round = [
        checkinOf(p.name, 'n1', '1.0.0'),
        checkinOf(p.name, 'n2', '1.1.0'),
        checkinOf(p.name, 'moving', '1.1.0'),
        checkinOf(p.name, 'yesterday', '1.0.0'),
        checkinOf(p.name, 'old', '1.0.0'),
        checkinOf(p.name, 'twice', '1.0.0'),
        checkinOf(p.name, 'twice', '1.2.0'),
        checkinOf(p.name, 'stale', '1.1.0'),
      ];
      try {
        const client = new Table({ ...cloud.file, endpoint: proxy.url }).client;
        const registry = batchingRegistry(new StaleReadTable(client, proxy.url, 'stale'));
        proxy.arm(n);
        const answers = await Promise.allSettled(round.map((c) => registry.record(c)));
        expect(proxy.dead).toBe(n <= 18);
        if (n > 18) expect(answers.map((a) => a.status)).not.toContain('rejected');
      } finally {
        await proxy.close();
      }
      await recoverIntents(cloud.table); // the restart
      const recovered = await countsAndRegistry(p.name);
      expect(recovered.counts).toEqual(recovered.truth);
      expect(recovered.today).toEqual(recovered.todayTruth);
      expect(await cloud.table.query(keys.intents().pk, undefined, true)).toEqual([]);

      // The devices answered 503 check in again, to the restarted cloud.
      const restarted = batchingRegistry(cloud.table);
      for (const c of round) await restarted.record(c);
      const settled = await countsAndRegistry(p.name);
      expect(settled.counts).toEqual({ '1.0.0': 3, '1.1.0': 3, '1.2.0': 1 });
      expect(settled.counts).toEqual(settled.truth);
      expect(settled.today).toEqual(settled.todayTruth);
      expect(settled.today.devices).toBe(7);
    },
  );
});

describe('a round cut off in a process that lives on', () => {
  it('is settled in the background; its devices answer 503 until then, and are counted once', async () => {
    const p = await freshProduct();
    const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint));
    await proxy.open();
    try {
      const registry = batchingRegistry(new Table({ ...cloud.file, endpoint: proxy.url }));
      proxy.arm(3); // the intent and two of the three entries land
      const round = ['a', 'b', 'c'].map((id) => checkinOf(p.name, id, '1.0.0'));
      const answers = await Promise.allSettled(round.map((c) => registry.record(c)));
      expect(answers.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
      proxy.revive();
      await expect(registry.record(checkinOf(p.name, 'a', '1.1.0'))).rejects.toThrow(StoreUnavailableError);
      const intents = () => cloud.table.query(keys.intents().pk, undefined, true);
      await until(
        async () => (await intents()).length === 0,
        15_000,
        'the intent to be settled in the background',
      );
      for (const c of [...round, checkinOf(p.name, 'a', '1.1.0')]) await registry.record(c);
    } finally {
      await proxy.close();
    }
    const { counts, truth } = await countsAndRegistry(p.name);
    expect(counts).toEqual({ '1.0.0': 2, '1.1.0': 1 });
    expect(counts).toEqual(truth);
  });
});
