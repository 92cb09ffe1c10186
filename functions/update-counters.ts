/**
 * An update's counters that devices move one by one: `started` (a grant), `success` and `failure`
 * (a report moving a device's outcome). At a 100% rollout every checkin grants and every device
 * reports, ~1,160 writes/s at 100M daily devices: one item takes ~1,000 at most, and transactions
 * meeting on it cancel each other. So they are written to UPDATE_COUNTER_SHARDS items beside the
 * update (`C#<updateId>#<shard>`, the shard a hash of the device id) and summed on read with the
 * update item's own counts: those written before shards existed, `deferred` (summed in memory and
 * written once per container per 10 s), and `started` of an update with a `limit`, whose grant
 * condition (`started < limit`) must see every start on one item to stay exact. That item takes
 * at most `limit` successful start writes in all (plus, per container, one refused write per
 * revalidation once the limit is reached); a large limit with no rate can still take them fast.
 */
import type { UpdateCounters, UpdateRecord } from '#core/types.ts';
import { shardOf } from './aggregates.ts';
import { transactThroughConflicts } from './conflicts.ts';
import { type Item, type Table, type TransactWrite, transactionToken } from './dynamo.ts';
import { keys } from './keys.ts';
import { updateFromItem } from './records.ts';

/**
 * 32 shards: ~36 writes/s each at 1,160 grants or reports/s, so conflicting transactions are rare
 * and retried (functions/conflicts.ts); an update's shards are ~32 × 80 bytes, read with its item.
 */
export const UPDATE_COUNTER_SHARDS = 32;

/** Marks the shards of a deleted update, so that no counter write re-creates them. */
const DELETED = 'deleted';
/**
 * Marks the shards of an update with a limit: they take no start, so a container whose cached
 * list has no limit yet cannot grant past it (its grant is refused and the device deferred).
 */
const LIMITED = 'limited';

type ShardedCounter = 'started' | 'success' | 'failure';

/**
 * The write that moves the device's share of the update's counters, in its shard. Refused (a
 * failed condition) once the update was deleted; a missing shard is created by the write.
 */
export function counterShardWrite(
  update: Pick<UpdateRecord, 'product' | 'id'>,
  deviceId: string,
  add: Partial<Record<ShardedCounter, number>>,
): TransactWrite {
  const start = add.started !== undefined;
  return {
    key: keys.updateCounters(update.product, update.id, shardOf(deviceId, UPDATE_COUNTER_SHARDS)),
    update: {
      add: add as Record<string, number>,
      condition: `attribute_not_exists(#deleted)${start ? ' AND attribute_not_exists(#limited)' : ''}`,
      names: { '#deleted': DELETED, ...(start ? { '#limited': LIMITED } : {}) },
    },
  };
}

/** Adds the counts of `shards` (items of any updates) to the updates they belong to. */
export function withShardCounts(updates: readonly UpdateRecord[], shards: readonly Item[]): UpdateRecord[] {
  const sums = new Map<string, { started: number; success: number; failure: number }>();
  for (const shard of shards) {
    const id = String(shard.sk).split('#')[1] ?? '';
    const sum = sums.get(id) ?? { started: 0, success: 0, failure: 0 };
    for (const name of ['started', 'success', 'failure'] as const) {
      const n = shard[name];
      if (typeof n === 'number') sum[name] += n;
    }
    sums.set(id, sum);
  }
  return updates.map((u) => {
    const sum = sums.get(u.id);
    if (!sum) return u;
    const counters: UpdateCounters = {
      ...u.counters,
      started: u.counters.started + sum.started,
      success: u.counters.success + sum.success,
      failure: u.counters.failure + sum.failure,
    };
    return { ...u, counters };
  });
}

/** The stored items of a product's updates and of their counter shards, read in parallel. */
export async function readUpdateItems(
  table: Table,
  product: string,
): Promise<{ updates: Item[]; shards: Item[] }> {
  const updates = keys.updatesOf(product);
  const shards = keys.updateCountersOf(product);
  const [updateItems, shardItems] = await Promise.all([
    table.query(updates.pk, updates.skPrefix, true),
    table.query(shards.pk, shards.skPrefix, true),
  ]);
  return { updates: updateItems, shards: shardItems };
}

/** The update with its counters summed over its shards, as stored now. */
export async function withStoredCounts(table: Table, update: UpdateRecord): Promise<UpdateRecord> {
  const { pk, skPrefix } = keys.updateCountersOf(update.product, update.id);
  return withShardCounts([update], await table.query(pk, skPrefix, true))[0]!;
}

/** An update as stored now, counters summed; undefined when there is none. */
export async function readUpdate(
  table: Table,
  product: string,
  id: string,
): Promise<UpdateRecord | undefined> {
  const item = await table.get(keys.update(product, id), true);
  return item ? withStoredCounts(table, updateFromItem(item)) : undefined;
}

/**
 * Before a limit is set on an update that had none: closes its shards to starts (a container
 * still without the limit in its cached list would otherwise grant past it, on shards the limit's
 * condition never sees), then moves the starts they hold onto its item, where that condition sees
 * them. Each move is a transaction conditional on the shard's count as read, so the sum never
 * changes; a grant landing before the shards closed makes it read again.
 */
export async function foldStartedShards(table: Table, update: Pick<UpdateRecord, 'product' | 'id'>) {
  await markShards(table, update, { set: { [LIMITED]: true } });
  const { pk, skPrefix } = keys.updateCountersOf(update.product, update.id);
  for (let pass = 0; pass < 5; pass++) {
    const shards = (await table.query(pk, skPrefix, true)).filter(
      (s) => typeof s.started === 'number' && s.started !== 0,
    );
    if (shards.length === 0) return;
    for (const shard of shards) {
      const started = Number(shard.started);
      await transactThroughConflicts(
        table,
        [
          {
            key: { pk: String(shard.pk), sk: String(shard.sk) },
            update: { add: { started: -started }, condition: '#started = :n', values: { ':n': started } },
          },
          {
            key: keys.update(update.product, update.id),
            update: { add: { started }, condition: 'attribute_exists(pk)' },
          },
        ],
        transactionToken(),
      );
    }
  }
}

/** When an update's limit is removed: its shards take starts again (see foldStartedShards). */
export async function reopenStartedShards(table: Table, update: Pick<UpdateRecord, 'product' | 'id'>) {
  await markShards(table, update, { remove: [LIMITED], condition: 'attribute_exists(pk)' });
}

async function markShards(
  table: Table,
  update: Pick<UpdateRecord, 'product' | 'id'>,
  spec: { set?: Record<string, true>; remove?: string[]; condition?: string },
) {
  await Promise.all(
    Array.from({ length: UPDATE_COUNTER_SHARDS }, (_, shard) =>
      table.update(keys.updateCounters(update.product, update.id, shard), spec),
    ),
  );
}

/**
 * Marks every counter shard of a deleted update, so late counter writes are refused. The marks
 * expire (DynamoDB's TTL) after RETIRED_SHARDS_KEPT_MS, long after any container's cached list
 * dropped the update, so catalog reloads do not read them forever.
 */
export async function retireCounterShards(
  table: Table,
  update: Pick<UpdateRecord, 'product' | 'id'>,
  now = Date.now(),
) {
  const expires = Math.ceil((now + RETIRED_SHARDS_KEPT_MS) / 1000);
  await table.putMany(
    Array.from({ length: UPDATE_COUNTER_SHARDS }, (_, shard) => ({
      ...keys.updateCounters(update.product, update.id, shard),
      [DELETED]: true,
      expires,
    })),
  );
}

const RETIRED_SHARDS_KEPT_MS = 24 * 3_600_000;
