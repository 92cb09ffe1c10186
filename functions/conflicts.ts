/**
 * Transactions that meet on a shared item (a device count shard, an update's counter shard, a
 * failure reason's shard) cancel each other on DynamoDB (TransactionConflict). Nothing of a
 * cancelled transaction is applied, so it is sent again with the same ClientRequestToken (applied
 * at most once) after capped exponential backoff with full jitter, which spreads the retries of
 * transactions that collided instead of making them collide again.
 */
import type { Table, TransactResult, TransactWrite } from './dynamo.ts';
import { TransactionConflictError } from './errors.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

/**
 * Tries per transaction, and the backoff before each retry: a random wait in [0, min(cap, base ×
 * 2^retry)), so at most 10 + 20 + 40 + 80 = 150 ms of waiting in all: a device is waiting on the
 * answer, and Lambda bills the time.
 */
export const CONFLICT_ATTEMPTS = 5;
const BACKOFF_BASE_MS = 10;
const BACKOFF_CAP_MS = 80;

/**
 * `table.transact`, sent again with the same token while DynamoDB cancels it for conflicts, at
 * most CONFLICT_ATTEMPTS times; then the last TransactionConflictError is thrown. Other errors are
 * thrown at once.
 */
export async function transactThroughConflicts(
  table: Table,
  writes: readonly TransactWrite[],
  token: string,
): Promise<TransactResult> {
  for (let retry = 0; ; retry++) {
    try {
      return await table.transact(writes, token);
    } catch (err) {
      if (!(err instanceof TransactionConflictError) || retry + 1 >= CONFLICT_ATTEMPTS) throw err;
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retry);
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
  }
}

/** Told when a registry entry was not written because its count shard stayed conflicted. */
export interface ConflictReporter {
  gaveUp(product: string): void;
}

/** How often at most a container logs that it gave up on conflicted entries. */
const LOG_EVERY_MS = 60_000;

/**
 * Counts every give-up as the RegistryConflicts metric and logs them at most once a minute (with
 * how many since the last line): under a conflict storm one line per checkin would be a flood.
 */
export function conflictReporter(
  log: Logger,
  metrics: Metrics,
  now: () => number = Date.now,
): ConflictReporter {
  let loggedAt = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  return {
    gaveUp(product) {
      metrics.count(product, 'RegistryConflicts');
      unlogged++;
      if (now() - loggedAt < LOG_EVERY_MS) return;
      log.warn('registry entries left for their next checkin: their count shard stayed conflicted', {
        product,
        entries: unlogged,
        attempts: CONFLICT_ATTEMPTS,
      });
      loggedAt = now();
      unlogged = 0;
    },
  };
}
