/** The update catalog: a product's updates as checkins see them, served from memory and revalidated. */
import type { UpdateRecord } from '#core/types.ts';
import { isSemver, sortByVersionDescending } from '#core/version.ts';
import type { Item, Table } from './dynamo.ts';
import { keys } from './keys.ts';
import { updateFromItem } from './records.ts';
import { readUpdateItems, withShardCounts } from './update-counters.ts';

export interface CatalogOptions {
  /** How long a product's update list is served from memory before the product stamp is re-read. */
  readonly revalidateMs: number;
  /** Reload a product's update list at least this often, even when its stamp did not move. */
  readonly fullReloadMs: number;
  /**
   * A cheap local change signal (the local cloud: mtime of <data>/changes, touched by the CLI).
   * When it moves, the update list is reloaded at once instead of after `revalidateMs`.
   */
  readonly changeSignal?: () => number;
  /** Told about stored items that are not valid updates (skipped, never served). */
  readonly onBadRecord?: (item: Item) => void;
  readonly now: () => number;
}

interface CachedUpdates {
  readonly updates: readonly UpdateRecord[];
  readonly stamp: number;
  readonly signal: number;
  readonly loadedAt: number;
  checkedAt: number;
}

/** Marks a product's update list as changed (publish, edit, enable, disable, delete, pause). */
export async function bumpStamp(table: Table, product: string): Promise<void> {
  // Sent again after a lost answer it moves twice, which is as good: readers only compare it.
  await table.update(keys.stamp(product), { add: { n: 1 }, idempotent: true });
}

export class UpdateCatalog {
  private readonly cache = new Map<string, CachedUpdates>();

  constructor(
    private readonly table: Table,
    private readonly options: CatalogOptions,
  ) {}

  /**
   * A product's updates in descending SemVer precedence. Served from memory; after `revalidateMs`
   * the product stamp (bumped by every change) is read, and the list is queried again only when
   * it moved.
   */
  async updatesOf(product: string): Promise<readonly UpdateRecord[]> {
    const now = this.options.now();
    const signal = this.options.changeSignal?.() ?? 0;
    const cached = this.cache.get(product);
    if (cached && cached.signal === signal && now - cached.checkedAt < this.options.revalidateMs) {
      return cached.updates;
    }
    const stampItem = await this.table.get(keys.stamp(product), true);
    const stamp = typeof stampItem?.n === 'number' ? stampItem.n : 0;
    // A stamp bump can be lost (the store failed right after a change): reload at least every
    // fullReloadMs whatever the stamp says.
    if (
      cached &&
      cached.stamp === stamp &&
      cached.signal === signal &&
      now - cached.loadedAt < this.options.fullReloadMs
    ) {
      cached.checkedAt = now;
      return cached.updates;
    }
    // Counters summed over their shards: phase gates decide on success and failure.
    const items = await readUpdateItems(this.table, product);
    const valid = items.updates.flatMap((item) => this.validUpdate(item));
    const updates = sortByVersionDescending(withShardCounts(valid, items.shards));
    this.cache.set(product, { updates, stamp, signal, checkedAt: now, loadedAt: now });
    return updates;
  }

  /** One update, for a report: its counters are the item's own (auto-abort reads them summed). */
  async get(product: string, updateId: string): Promise<UpdateRecord | undefined> {
    const item = await this.table.get(keys.update(product, updateId));
    return item ? this.validUpdate(item)[0] : undefined;
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
    this.cache.delete(update.product);
    return out !== undefined;
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
}
