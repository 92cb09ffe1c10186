/**
 * Managing published updates: list, show, enable, disable, edit, delete. Every change ends with
 * the product stamp bumped, so running clouds reload their cached update list.
 */
import type { UpdateRecord } from '#core/types.ts';
import { parseVersion, precedenceKey, sortByVersionDescending } from '#core/version.ts';
import type { Item, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { updateFromItem } from '#functions/records.ts';
import {
  foldStartedShards,
  readUpdateItems,
  reopenStartedShards,
  retireCounterShards,
  withShardCounts,
  withStoredCounts,
} from '#functions/update-counters.ts';
import { announceChange, type CloudParts, type CloudRecords } from './cloud.ts';
import { adminOperation, ImageStoreError, NotFoundError, toAdminError } from './errors.ts';
import {
  applyChanges,
  changeEntries,
  checkProduct,
  checkSettings,
  settingsOf,
  type UpdateChanges,
} from './settings.ts';

/** Which update: a product and a version (an update of the same precedence also answers). */
export interface UpdateSelector {
  readonly product: string;
  readonly version: string;
}

/** A product's updates, highest version first (no validation: callers check the product). */
export async function updatesOf(table: Table, product: string): Promise<UpdateRecord[]> {
  const items = await readUpdateItems(table, product);
  return sortByVersionDescending(withShardCounts(items.updates.map(updateFromItem), items.shards));
}

export async function findUpdate(table: Table, { product, version }: UpdateSelector): Promise<UpdateRecord> {
  checkProduct(product);
  parseVersion(version);
  const updates = await updatesOf(table, product);
  const found =
    updates.find((u) => u.version === version) ??
    updates.find((u) => precedenceKey(u.version) === precedenceKey(version));
  if (!found) {
    throw new NotFoundError(
      `No update ${version} of product ${product}: see updraft list --product ${product}`,
    );
  }
  return found;
}

/** The updates of a product, highest version first. */
export function listUpdates(cloud: CloudRecords, product: string): Promise<UpdateRecord[]> {
  return adminOperation(cloud.store, async () => {
    checkProduct(product);
    return updatesOf(cloud.table, product);
  });
}

/** The update of a product with a version, or with the same precedence (build metadata ignored). */
export function showUpdate(cloud: CloudRecords, selector: UpdateSelector): Promise<UpdateRecord> {
  return adminOperation(cloud.store, () => findUpdate(cloud.table, selector));
}

async function changeUpdate(
  cloud: CloudRecords,
  update: UpdateRecord,
  set: Record<string, string | number | boolean | undefined>,
  remove: string[] = [],
): Promise<UpdateRecord> {
  const out = await cloud.table.update(keys.update(update.product, update.id), {
    set,
    remove,
    condition: 'attribute_exists(pk)',
  });
  if (!out) throw new NotFoundError(`Update ${update.version} of ${update.product} was deleted meanwhile`);
  await announceChange(cloud, update.product);
  return withStoredCounts(cloud.table, updateFromItem(out as Item));
}

/** Enables an update; also resumes one paused by auto-abort. */
export function enableUpdate(cloud: CloudRecords, selector: UpdateSelector): Promise<UpdateRecord> {
  return adminOperation(cloud.store, async () => {
    const update = await findUpdate(cloud.table, selector);
    return changeUpdate(cloud, update, { enabled: true, paused: false }, ['pauseReason']);
  });
}

/** Disables an update: checkins stop getting it. */
export function disableUpdate(cloud: CloudRecords, selector: UpdateSelector): Promise<UpdateRecord> {
  return adminOperation(cloud.store, async () => {
    const update = await findUpdate(cloud.table, selector);
    return changeUpdate(cloud, update, { enabled: false });
  });
}

/** Changes policy, description, limits or abort settings; the result is validated as a publish would be. */
export function editUpdate(
  cloud: CloudRecords,
  selector: UpdateSelector,
  changes: UpdateChanges,
  now: () => number = Date.now,
): Promise<UpdateRecord> {
  return adminOperation(cloud.store, async () => {
    const entries = changeEntries(changes);
    const update = await findUpdate(cloud.table, selector);
    const next = applyChanges(settingsOf(update), entries);
    checkSettings(update.version, update.allowDowngrade, next);
    const set: Record<string, string | number | undefined> = {};
    // The merged settings hold each value in its canonical spelling (phases, gate, start).
    for (const [name] of entries) set[name] = next[name];
    // Phases added to a running update start now, not at its publication.
    if (next.phases !== undefined && next.startAt === undefined && update.phases === undefined) {
      set.startAt = new Date(now()).toISOString();
    }
    // A limit's condition counts starts on the update item; without one they are sharded. A
    // limit removed (or removed again after an edit cut off) opens the shards to starts.
    if (next.limit === undefined) {
      if (entries.some(([name]) => name === 'limit')) await reopenStartedShards(cloud.table, update);
      return changeUpdate(cloud, update, set);
    }
    if (update.limit !== undefined) return changeUpdate(cloud, update, set);
    try {
      await foldStartedShards(cloud.table, update);
      return await changeUpdate(cloud, update, set);
    } catch (err) {
      // Not limited after all: shards closed to starts would defer every device.
      await reopenStartedShards(cloud.table, update).catch(() => {});
      throw err;
    }
  });
}

/** Deletes the update record (first, so devices stop getting it), then its image and version guard. */
export function deleteUpdate(cloud: CloudParts, selector: UpdateSelector): Promise<UpdateRecord> {
  return adminOperation(cloud.store, async () => {
    const { table, images } = cloud;
    const update = await findUpdate(table, selector);
    await table.delete(keys.update(update.product, update.id));
    // Then its counter shards: a checkin whose cached list still offers it finds them retired and
    // defers (retired first, a failed delete would leave an update nobody can be granted).
    await retireCounterShards(table, update);
    await announceChange(cloud, update.product);
    try {
      await images.delete(update.key);
    } catch (err) {
      throw new ImageStoreError(
        `Deleted update ${update.version} of ${update.product}, but not its image s3://${images.bucket}/${update.key}: ${toAdminError(err).message}`,
        undefined,
        { cause: err },
      );
    }
    await table.delete(keys.versionGuard(update.product, precedenceKey(update.version)), {
      expression: 'id = :id',
      values: { ':id': update.id },
    });
    return update;
  });
}
