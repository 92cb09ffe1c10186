/**
 * What the checkin and report handlers need from the table: token scopes, a product's updates,
 * grants and limit counters, reports and the device registry. Caches live here, per container.
 */
import { createHash } from 'node:crypto';
import type { DeviceCheckin, DeviceReport, UpdateCounters, UpdateRecord } from '#core/types.ts';
import { isSemver, sortByVersionDescending } from '#core/version.ts';
import type { Item, Table } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';
import {
  grantWrites,
  outcomeOf,
  outcomeWrites,
  type RateWindowSlot,
  reportRecord,
  transactionToken,
} from './ledger-writes.ts';
import { updateFromItem } from './records.ts';

export interface TokenScope {
  readonly product: string;
  /** When set, the token is valid for this device only. */
  readonly device?: string;
}

export interface DeviceStoreOptions {
  /** How long a product's update list is served from memory before the product stamp is re-read. */
  readonly updatesRevalidateMs: number;
  /** How long a token lookup (found or not) is cached. */
  readonly tokenCacheMs: number;
  /** Skip rewriting a device's registry entry when unchanged and younger than this. */
  readonly registryRefreshMs: number;
  /**
   * A cheap local change signal (the local cloud: mtime of <data>/changes, touched by the CLI).
   * When it moves, the update list is reloaded at once instead of after `updatesRevalidateMs`.
   */
  readonly changeSignal?: () => number;
  /**
   * When set, registry entries are buffered and written in batches this often instead of once per
   * checkin (the local cloud, where dynalite's write cost dominates a checkin). Unset in Lambda,
   * whose container may freeze before a timer fires.
   */
  readonly registryBatchMs?: number;
  /** Told about stored items that are not valid updates (skipped, never served). */
  readonly onBadRecord?: (item: Item) => void;
  readonly now?: () => number;
}

/** Reload a product's update list at least this often, even when its stamp did not move. */
const FULL_RELOAD_MS = 5 * 60 * 1000;
/** Reports of one device racing to move its outcome: each loses at most this many times. */
const OUTCOME_ATTEMPTS = 3;

type DeviceEntry = ReturnType<typeof keys.device> & { version: string; lastSeen: string; properties: string };

interface CachedUpdates {
  readonly updates: readonly UpdateRecord[];
  readonly stamp: number;
  readonly signal: number;
  readonly loadedAt: number;
  checkedAt: number;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A tiny insertion-ordered cache that forgets its oldest entries past `max`. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}

export class DeviceStore {
  private readonly updatesCache = new Map<string, CachedUpdates>();
  private readonly tokenCache = new BoundedMap<string, { scope: TokenScope | undefined; at: number }>(10_000);
  private readonly registryCache = new BoundedMap<string, { fingerprint: string; at: number }>(100_000);
  private readonly pendingDevices = new Map<string, DeviceEntry>();
  private readonly deferred = new Map<string, { update: UpdateRecord; n: number }>();
  private readonly limitReached = new BoundedMap<string, number>(10_000);
  private readonly fullWindows = new BoundedMap<string, number>(10_000);
  private readonly knownGrants = new BoundedMap<string, true>(100_000);
  private registryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(
    readonly table: Table,
    private readonly options: DeviceStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async tokenScope(token: string): Promise<TokenScope | undefined> {
    const hash = hashToken(token);
    const now = this.now();
    const hit = this.tokenCache.get(hash);
    if (hit && now - hit.at < this.options.tokenCacheMs) return hit.scope;
    const item = await this.table.get(keys.token(hash));
    const scope =
      item && item.revoked !== true
        ? {
            product: String(item.product),
            ...(typeof item.device === 'string' ? { device: item.device } : {}),
          }
        : undefined;
    this.tokenCache.set(hash, { scope, at: now });
    return scope;
  }

  /**
   * A product's updates in descending SemVer precedence. Served from memory; after
   * `updatesRevalidateMs` the product stamp (bumped by every change) is read, and the list is
   * queried again only when it moved.
   */
  async updatesOf(product: string): Promise<readonly UpdateRecord[]> {
    const now = this.now();
    const signal = this.options.changeSignal?.() ?? 0;
    const cached = this.updatesCache.get(product);
    if (cached && cached.signal === signal && now - cached.checkedAt < this.options.updatesRevalidateMs) {
      return cached.updates;
    }
    const stampItem = await this.table.get(keys.stamp(product), true);
    const stamp = typeof stampItem?.n === 'number' ? stampItem.n : 0;
    // A stamp bump can be lost (the store failed right after a change): reload at least every
    // FULL_RELOAD_MS whatever the stamp says.
    if (
      cached &&
      cached.stamp === stamp &&
      cached.signal === signal &&
      now - cached.loadedAt < FULL_RELOAD_MS
    ) {
      cached.checkedAt = now;
      return cached.updates;
    }
    const { pk, skPrefix } = keys.updatesOf(product);
    const items = await this.table.query(pk, skPrefix, true);
    const updates = sortByVersionDescending(items.flatMap((item) => this.validUpdate(item)));
    this.updatesCache.set(product, { updates, stamp, signal, checkedAt: now, loadedAt: now });
    return updates;
  }

  async getUpdate(product: string, updateId: string): Promise<UpdateRecord | undefined> {
    const item = await this.table.get(keys.update(product, updateId));
    return item ? this.validUpdate(item)[0] : undefined;
  }

  /**
   * A stored item as an update, or nothing when it is not one (a record damaged by hand, or left
   * by a writer of another version): stored data must never turn into a client's 400.
   */
  private validUpdate(item: Item): UpdateRecord[] {
    const update = updateFromItem(item);
    if (typeof item.version === 'string' && isSemver(update.version) && typeof item.key === 'string')
      return [update];
    this.options.onBadRecord?.(item);
    return [];
  }

  /** Whether the device was granted the update. Grants are permanent, so found ones are remembered. */
  async hasGrant(updateId: string, deviceId: string): Promise<boolean> {
    const cacheKey = `${updateId}\u0000${deviceId}`;
    if (this.knownGrants.has(cacheKey)) return true;
    const found = (await this.table.get(keys.grant(updateId, deviceId))) !== undefined;
    if (found) this.knownGrants.set(cacheKey, true);
    return found;
  }

  /**
   * True when this container saw the update's limit reached less than `updatesRevalidateMs` ago
   * (deferring then needs no write). It expires because a start can be given back (a deferral by a
   * later limit, a concurrent duplicate), freeing a place.
   */
  limitKnownReached(update: UpdateRecord): boolean {
    if (update.limit === undefined) return false;
    const seen = this.limitReached.get(update.id);
    return seen !== undefined && this.now() - seen < this.options.updatesRevalidateMs;
  }

  /** True when this container already saw the rate window full. */
  rateWindowKnownFull(update: UpdateRecord, window: number): boolean {
    return this.fullWindows.get(update.id) === window;
  }

  /**
   * Grants the update to the device: the grant record, `started` (under the limit, if any) and the
   * rate window's count (under the rate) change together or not at all (DESIGN §5), so a device's
   * duplicate checkins, which find its grant record, take no start and no window slot. `again`:
   * another checkin of the device recorded the grant first. A deleted update counts as `limit`:
   * every counter write requires the item, so none re-creates it as a stub.
   */
  async grant(
    update: UpdateRecord,
    deviceId: string,
    window?: RateWindowSlot,
  ): Promise<'granted' | 'again' | 'limit' | 'rate'> {
    const writes = grantWrites(update, deviceId, window, this.now());
    const result = await this.table.transact(writes, transactionToken());
    const grantIndex = writes.length - 1;
    if (result.ok || result.failed.includes(grantIndex)) {
      // Either way the grant exists now: the device's next checkin needs no read to find it.
      this.knownGrants.set(`${update.id}\u0000${deviceId}`, true);
      return result.ok ? 'granted' : 'again';
    }
    if (result.failed.includes(0)) {
      this.limitReached.set(update.id, this.now());
      return 'limit';
    }
    if (window) this.fullWindows.set(update.id, window.index);
    return 'rate';
  }

  /** Counts a deferral; summed in memory and written by `flushCounters`. */
  countDeferred(update: UpdateRecord): void {
    const key = `${update.product}\u0000${update.id}`;
    const pending = this.deferred.get(key);
    this.deferred.set(key, { update, n: (pending?.n ?? 0) + 1 });
  }

  /**
   * Writes summed deferral counts (one ADD per update). Failed sums are kept for the next flush,
   * except one whose write may have been applied: sending it again could count it twice.
   */
  async flushCounters(): Promise<void> {
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

  /** Registry entry: last seen, version, properties. Unchanged devices are rewritten only every `registryRefreshMs`. */
  async recordDevice(device: DeviceCheckin): Promise<void> {
    const properties = JSON.stringify(device.body);
    // Typical bodies are kept as they are (cheaper than hashing on every checkin); large ones as a
    // digest, or up to 100,000 cached bodies of up to 16 KiB would be gigabytes.
    const fingerprint =
      properties.length <= 512 ? properties : createHash('sha256').update(properties).digest('base64');
    const cacheKey = `${device.product}\u0000${device.id}`;
    const now = this.now();
    const seen = this.registryCache.get(cacheKey);
    if (seen && seen.fingerprint === fingerprint && now - seen.at < this.options.registryRefreshMs) return;
    const entry = {
      ...keys.device(device.product, device.id),
      version: device.version,
      lastSeen: new Date(now).toISOString(),
      properties,
    };
    this.registryCache.set(cacheKey, { fingerprint, at: now });
    if (this.options.registryBatchMs === undefined) {
      try {
        await this.table.put(entry);
      } catch (err) {
        this.registryCache.delete(cacheKey);
        throw err;
      }
      return;
    }
    this.pendingDevices.set(cacheKey, entry);
    this.scheduleRegistryFlush();
  }

  private scheduleRegistryFlush(): void {
    if (this.closed || this.registryTimer) return;
    this.registryTimer = setTimeout(
      () => void this.flushRegistry().catch(() => {}),
      this.options.registryBatchMs,
    );
    this.registryTimer.unref();
  }

  /** Stops background flushing (the host flushes once more itself before closing). */
  close(): void {
    this.closed = true;
    clearTimeout(this.registryTimer);
    this.registryTimer = undefined;
  }

  /**
   * Writes buffered registry entries (25 per request). A failed batch stays buffered for the next
   * flush; only the local cloud buffers, and it flushes on stop.
   */
  async flushRegistry(): Promise<void> {
    clearTimeout(this.registryTimer);
    this.registryTimer = undefined;
    if (this.pendingDevices.size === 0) return;
    const batch = [...this.pendingDevices];
    this.pendingDevices.clear();
    try {
      await this.table.putMany(batch.map(([, entry]) => entry));
    } catch (err) {
      for (const [cacheKey, entry] of batch) {
        if (!this.pendingDevices.has(cacheKey)) this.pendingDevices.set(cacheKey, entry);
      }
      this.scheduleRegistryFlush();
      throw err;
    }
  }

  /**
   * Stores a report once per (device, update, status). A device contributes one outcome per update,
   * kept on its grant record with a version: a report whose outcome differs from the recorded one
   * moves the device's count (a retry that succeeds moves a failure to a success) in the same
   * transaction as the report record and the grant's outcome (DESIGN §5), conditional on the
   * version read, so concurrent reports of one device move it once each. `changed`: the counters
   * moved; `not-granted`: no grant record; `deleted`: the update is gone.
   */
  async recordReport(
    update: UpdateRecord,
    report: DeviceReport,
    success: boolean | undefined,
  ): Promise<'changed' | 'unchanged' | 'not-granted' | 'deleted'> {
    const grantKey = keys.grant(update.id, report.id);
    const next = success === undefined ? null : success ? 'success' : 'failure';
    for (let attempt = 0; attempt < OUTCOME_ATTEMPTS; attempt++) {
      const grant = next === null ? undefined : await this.table.get(grantKey, true);
      if (next !== null && !grant) return 'not-granted';
      const from = outcomeOf(grant);
      if (next === null || next === from.outcome) {
        await this.table.put(reportRecord(report, this.now()), true);
        return 'unchanged';
      }
      const result = await this.table.transact(
        outcomeWrites(update, report, from, next, this.now()),
        transactionToken(),
      );
      if (result.ok) return 'changed';
      if (result.failed.includes(2)) return 'unchanged'; // the same report again
      if (result.failed.includes(1)) return 'deleted';
      // Another report of this device moved its outcome since the read: read it again.
    }
    throw new StoreUnavailableError('dynamodb');
  }

  /** The update's counters as stored now (auto-abort decides on them). */
  async countersOf(update: UpdateRecord): Promise<UpdateCounters | undefined> {
    const item = await this.table.get(keys.update(update.product, update.id), true);
    return item ? updateFromItem(item).counters : undefined;
  }

  /**
   * After an applied update the device runs the new version: record it in the registry now rather
   * than at its next checkin (possibly a day later), so `updraft stats` shows the rollout.
   */
  async recordAppliedVersion(product: string, deviceId: string, version: string): Promise<void> {
    const lastSeen = new Date(this.now()).toISOString();
    // A buffered entry (local cloud) would otherwise land later with the old version.
    const pending = this.pendingDevices.get(`${product}\u0000${deviceId}`);
    if (pending) {
      pending.version = version;
      pending.lastSeen = lastSeen;
    }
    await this.table.update(keys.device(product, deviceId), {
      set: { version, lastSeen },
      condition: 'attribute_exists(pk)',
    });
  }

  /** Pauses the update unless already paused; bumps the product stamp so every container sees it. */
  async pause(update: UpdateRecord, reason: string): Promise<boolean> {
    const out = await this.table.update(keys.update(update.product, update.id), {
      set: { paused: true, pauseReason: reason },
      condition: 'attribute_exists(pk) AND (attribute_not_exists(#paused) OR #paused = :no)',
      names: { '#paused': 'paused' },
      values: { ':no': false },
    });
    if (out) await bumpStamp(this.table, update.product);
    this.updatesCache.delete(update.product);
    return out !== undefined;
  }
}

/** Marks a product's update list as changed (publish, edit, enable, disable, delete, pause). */
export async function bumpStamp(table: Table, product: string): Promise<void> {
  // Sent again after a lost answer it moves twice, which is as good: readers only compare it.
  await table.update(keys.stamp(product), { add: { n: 1 }, idempotent: true });
}
