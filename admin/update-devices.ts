/**
 * The devices granted one update, each with its outcome (DESIGN §11: an update's per-device
 * outcomes). Read from the update's grant records a page at a time, in device id order, resumable
 * with an opaque cursor: the report ledger keeps each device's outcome on its grant, so a page is
 * one query, whatever the fleet size.
 */
import { ValidationError } from '#core/errors.ts';
import type { Item } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation } from './errors.ts';
import { decodeKeyCursor, encodeCursor } from './registry-pages.ts';
import { findUpdate, type UpdateSelector } from './updates.ts';

export interface GrantedDevice {
  readonly id: string;
  /** When the device was granted the update (ISO 8601). */
  readonly granted: string;
  /** The outcome it reported last; null before its first (downloading, installing, or silent). */
  readonly outcome: 'success' | 'failure' | null;
  /** When it reported that outcome (ISO 8601). */
  readonly outcomeAt?: string;
  /** A failure's error text, as the device sent it. */
  readonly error?: string;
}

export interface UpdateDeviceQuery extends UpdateSelector {
  /** Devices per page, 1–1000 (default 50). */
  readonly limit?: number;
  /** The cursor a previous page ended with. */
  readonly next?: string;
}

export interface UpdateDevicePage {
  /** The update's id. */
  readonly update: string;
  readonly version: string;
  /** In device id order. */
  readonly devices: readonly GrantedDevice[];
  /** Resumes after this page; absent on the last page. */
  readonly next?: string;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;

function grantedDevice(grant: Item): GrantedDevice {
  const outcome = grant.outcome === 'success' || grant.outcome === 'failure' ? grant.outcome : null;
  return {
    id: String(grant.sk),
    granted: String(grant.at),
    outcome,
    ...(outcome && typeof grant.outcomeAt === 'string' ? { outcomeAt: grant.outcomeAt } : {}),
    ...(outcome === 'failure' && typeof grant.error === 'string' ? { error: grant.error } : {}),
  };
}

/** One page of the devices granted an update, with their outcomes. */
export function updateDevices(cloud: CloudRecords, query: UpdateDeviceQuery): Promise<UpdateDevicePage> {
  return adminOperation(cloud.store, async () => {
    const limit = query.limit ?? DEFAULT_PAGE;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new ValidationError(`Invalid --limit ${limit}: use a whole number from 1 to ${MAX_PAGE}`);
    const update = await findUpdate(cloud.table, query);
    const { pk } = keys.grantsOf(update.id);
    const start =
      query.next === undefined
        ? undefined
        : decodeKeyCursor(
            query.next,
            pk,
            `pass the cursor a previous page gave, unchanged, for update ${update.version}`,
          );
    // One more than asked: whether a next page exists is then known, never an empty last page.
    const { items } = await cloud.table.queryPage(pk, { limit: limit + 1, ...(start ? { start } : {}) });
    const listed = items.slice(0, limit);
    const last = listed.at(-1);
    return {
      update: update.id,
      version: update.version,
      devices: listed.map(grantedDevice),
      ...(items.length > limit && last ? { next: encodeCursor({ pk, sk: String(last.sk) }) } : {}),
    };
  });
}
