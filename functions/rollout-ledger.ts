/**
 * The rollout ledger: which devices were granted an update, and the limits of DESIGN §4 step 4
 * (grant idempotency, percentage, limit, rate, in that order) against the counters that enforce
 * them. Deferrals are counted here, and only here.
 */
import { inPercentage, rateWindow } from '#core/rollout.ts';
import type { UpdateRecord } from '#core/types.ts';
import { BoundedMap } from './bounded-map.ts';
import { transactThroughConflicts } from './conflicts.ts';
import { type Table, type TransactWrite, transactionToken } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';
import type { Metrics } from './metrics.ts';
import { counterShardWrite } from './update-counters.ts';

export type Grant =
  | { readonly granted: true; readonly again: boolean }
  | { readonly granted: false; readonly reason: 'percentage' | 'limit' | 'rate' };

interface RateWindowSlot {
  readonly index: number;
  readonly expiresAt: number;
}

export interface RolloutLedgerOptions {
  /** How long a limit seen reached defers without a write (the update list's revalidation time). */
  readonly limitMemoryMs: number;
  /** Where UpdateStarted and UpdateDeferred are counted. */
  readonly metrics: Metrics;
  readonly now: () => number;
}

export class RolloutLedger {
  private readonly deferred = new Map<string, { update: UpdateRecord; n: number }>();
  private readonly limitReached = new BoundedMap<string, number>(10_000);
  private readonly fullWindows = new BoundedMap<string, number>(10_000);
  private readonly knownGrants = new BoundedMap<string, true>(100_000);

  constructor(
    private readonly table: Table,
    private readonly options: RolloutLedgerOptions,
  ) {}

  /** Whether the device was granted the update. Grants are permanent, so found ones are remembered. */
  async hasGrant(updateId: string, deviceId: string): Promise<boolean> {
    const cacheKey = `${updateId}\u0000${deviceId}`;
    if (this.knownGrants.has(cacheKey)) return true;
    const found = (await this.table.get(keys.grant(updateId, deviceId))) !== undefined;
    if (found) this.knownGrants.set(cacheKey, true);
    return found;
  }

  /**
   * Decides whether the device may have the candidate now, and counts the answer: a new grant as
   * UpdateStarted, a hold-back as a deferral. The grant and the counters it takes are written
   * together (`grant`), so concurrent checkins never grant past a limit, and a device's duplicate
   * checkins take no second start or window slot.
   */
  async admit(update: UpdateRecord, deviceId: string, now: number): Promise<Grant> {
    const grant = await this.decide(update, deviceId, now);
    if (!grant.granted) this.countDeferred(update);
    else if (!grant.again) this.options.metrics.count(update.product, 'UpdateStarted', 1, update.id);
    return grant;
  }

  private async decide(update: UpdateRecord, deviceId: string, now: number): Promise<Grant> {
    if (await this.hasGrant(update.id, deviceId)) return { granted: true, again: true };
    if (update.percentage !== undefined && !inPercentage(update.id, deviceId, update.percentage)) {
      return { granted: false, reason: 'percentage' };
    }
    const window =
      update.rate !== undefined && update.period !== undefined ? rateWindow(now, update.period) : undefined;
    // Limits known to be reached in this container defer without a write, in the design's order.
    if (this.limitKnownReached(update)) return { granted: false, reason: 'limit' };
    if (window !== undefined && this.fullWindows.get(update.id) === window)
      return { granted: false, reason: 'rate' };
    const slot =
      window === undefined
        ? undefined
        : { index: window, expiresAt: (window + 2) * (update.period ?? 0) * 1000 };
    const outcome = await this.grant(update, deviceId, slot);
    if (outcome === 'granted' || outcome === 'again') return { granted: true, again: outcome === 'again' };
    return { granted: false, reason: outcome };
  }

  /**
   * True when this container saw the update's limit reached less than `limitMemoryMs` ago. It
   * expires because a start can be given back (a transaction undone), freeing a place.
   */
  private limitKnownReached(update: UpdateRecord): boolean {
    if (update.limit === undefined) return false;
    const seen = this.limitReached.get(update.id);
    return seen !== undefined && this.options.now() - seen < this.options.limitMemoryMs;
  }

  /**
   * Grants the update to the device: the grant record, `started` (under the limit, if any) and the
   * rate window's count (under the rate) change together or not at all (DESIGN §5), so a device's
   * duplicate checkins, which find its grant record, take no start and no window slot. `again`:
   * another checkin of the device recorded the grant first. A deleted update counts as `limit`:
   * every counter write requires the item (or its shard not retired), so none re-creates it.
   */
  private async grant(
    update: UpdateRecord,
    deviceId: string,
    window: RateWindowSlot | undefined,
  ): Promise<'granted' | 'again' | 'limit' | 'rate'> {
    const writes = grantWrites(update, deviceId, window, this.options.now());
    const result = await transactThroughConflicts(this.table, writes, transactionToken());
    const grantIndex = writes.length - 1;
    if (result.ok || result.failed.includes(grantIndex)) {
      // Either way the grant exists now: the device's next checkin needs no read to find it.
      this.knownGrants.set(`${update.id}\u0000${deviceId}`, true);
      return result.ok ? 'granted' : 'again';
    }
    if (result.failed.includes(0)) {
      // Without a limit in this container's copy, its shards were closed for a limit being added
      // (update-counters.ts): not a reached limit to remember once the copy has it.
      if (update.limit !== undefined) this.limitReached.set(update.id, this.options.now());
      return 'limit';
    }
    if (window) this.fullWindows.set(update.id, window.index);
    return 'rate';
  }

  /** A deferral: a metric, and a sum in memory written by `flushDeferrals`. */
  private countDeferred(update: UpdateRecord): void {
    this.options.metrics.count(update.product, 'UpdateDeferred', 1, update.id);
    const key = `${update.product}\u0000${update.id}`;
    const pending = this.deferred.get(key);
    this.deferred.set(key, { update, n: (pending?.n ?? 0) + 1 });
  }

  /**
   * Writes summed deferral counts (one ADD per update). Failed sums are kept for the next flush,
   * except one whose write may have been applied: sending it again could count it twice.
   */
  async flushDeferrals(): Promise<void> {
    const sums = [...this.deferred.values()];
    this.deferred.clear();
    for (const [i, { update, n }] of sums.entries()) {
      try {
        await this.table.update(keys.update(update.product, update.id), {
          add: { deferred: n },
          condition: 'attribute_exists(pk)',
        });
      } catch (err) {
        const maybeApplied = err instanceof StoreUnavailableError && err.mayHaveApplied;
        for (const rest of sums.slice(maybeApplied ? i + 1 : i)) {
          const key = `${rest.update.product}\u0000${rest.update.id}`;
          const pending = this.deferred.get(key);
          this.deferred.set(key, { update: rest.update, n: (pending?.n ?? 0) + rest.n });
        }
        throw err;
      }
    }
  }
}

/**
 * A grant's transaction: `started` (under the limit, if any), the rate window's count (under the
 * rate) and last the grant record, which must not exist. Index 0 is the start (refused when the
 * update was deleted), the last the grant.
 */
function grantWrites(
  update: UpdateRecord,
  deviceId: string,
  window: RateWindowSlot | undefined,
  at: number,
): TransactWrite[] {
  // Under a limit, on the update item, where the condition sees every start; otherwise on the
  // device's counter shard, so that a rollout to everyone makes no item hot (update-counters.ts).
  const started: TransactWrite =
    update.limit === undefined
      ? counterShardWrite(update, deviceId, { started: 1 })
      : {
          key: keys.update(update.product, update.id),
          update: {
            add: { started: 1 },
            condition: 'attribute_exists(pk) AND (attribute_not_exists(#started) OR #started < :limit)',
            values: { ':limit': update.limit },
          },
        };
  const slot: TransactWrite[] = window
    ? [
        {
          key: keys.rateWindow(update.id, window.index),
          update: {
            add: { n: 1 },
            set: { expires: Math.ceil(window.expiresAt / 1000) },
            condition: 'attribute_not_exists(#n) OR #n < :rate',
            values: { ':rate': update.rate ?? 0 },
          },
        },
      ]
    : [];
  return [started, ...slot, { put: { ...keys.grant(update.id, deviceId), at: new Date(at).toISOString() } }];
}
