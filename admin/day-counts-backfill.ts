/**
 * Days counted before per-day items (part of `stats --backfill`): the previous version kept each
 * day's distinct devices on the version shards, as `d_yyyymmdd` attributes. Each one moves onto that
 * day's item of the same shard, in one transaction conditional on its value as read, so running it
 * twice, stopping it half way or checkins meanwhile (which no longer write these attributes) never
 * count a day twice. The version shards then shrink back to their versions: DynamoDB bills every
 * version move by the shard's whole size. Days past the retention are dropped, as they would have
 * expired.
 */

import { dayOf, dayWrite, legacyDaysOf } from '#functions/aggregates.ts';
import { AGGREGATES } from '#functions/config.ts';
import { transactThroughConflicts } from '#functions/conflicts.ts';
import { type Table, type TransactWrite, transactionToken } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';

/** Moves every legacy day count of `product`; returns how many attributes it moved. */
export async function moveLegacyDayCounts(table: Table, product: string, now = Date.now()): Promise<number> {
  const oldest = dayOf(now - AGGREGATES.retentionDays * 86_400_000);
  const { pk, skPrefix } = keys.deviceCountsOf(product);
  let moved = 0;
  for (const shard of await table.query(pk, skPrefix, true)) {
    const key = { pk, sk: String(shard.sk) };
    const shardNumber = Number(key.sk.slice(skPrefix.length));
    for (const [day, devices, name] of legacyDaysOf(shard)) {
      const writes: TransactWrite[] = [
        {
          key,
          update: {
            remove: [name],
            condition: '#day = :devices',
            names: { '#day': name },
            values: { ':devices': devices },
          },
        },
      ];
      if (day >= oldest && devices !== 0) writes.push(dayWrite(product, day, shardNumber, { seen: devices }));
      // Not ok: another run moved it first.
      if ((await transactThroughConflicts(table, writes, transactionToken())).ok) moved++;
    }
  }
  return moved;
}
