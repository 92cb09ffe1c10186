/**
 * The device list and one device's history (DESIGN §10). The list reads the registry a page at a
 * time (admin/registry-pages.ts), filters each page by version and by a policy (the policy engine
 * of the checkin), and adds each listed device's last outcome: never a read of the whole fleet.
 */
import { ID_RULE, isValidId } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import { type CompiledPolicy, compilePolicy } from '#core/policy.ts';
import type { DeviceObject, ReportStatus } from '#core/types.ts';
import { isSemver, parseVersion, quoteInput } from '#core/version.ts';
import type { Item, Key, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation, NotFoundError } from './errors.ts';
import { evaluateFor } from './policy-check.ts';
import { decodeCursor, deviceOfEntry, encodeCursor, propertiesOf, registryPage } from './registry-pages.ts';
import { checkProduct } from './settings.ts';
import { updatesOf } from './updates.ts';

export interface DeviceQuery {
  readonly product: string;
  /** Only devices running this version. */
  readonly version?: string;
  /** Only devices this policy matches (newVersion is null). */
  readonly where?: string;
  /** Only devices whose id starts with this: the walk seeks to it and ends after its last id. */
  readonly idPrefix?: string;
  /** Devices per page, 1–1000 (default 50). */
  readonly limit?: number;
  /** The cursor a previous page ended with. */
  readonly next?: string;
}

export interface LastOutcome {
  readonly update: string;
  readonly version: string;
  readonly outcome: 'success' | 'failure';
  readonly at: string;
}

export interface DeviceSummary {
  readonly id: string;
  readonly version: string;
  readonly lastSeen: string;
  /** The update the device last reported an outcome of; null before its first. */
  readonly lastUpdate: LastOutcome | null;
}

export interface DevicePage {
  readonly product: string;
  readonly devices: readonly DeviceSummary[];
  /** Registry entries read for this page (more than listed when a filter skipped some). */
  readonly scanned: number;
  /** Resumes the list after this page; absent on the last page. */
  readonly next?: string;
}

export const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;
/** A filtered page reads at most this many entries, then ends with a cursor even if not full. */
const FILTERED_SCAN_BOUND = 5000;
/**
 * Entries per registry read after the first (which asks for the page size): a filter that skips
 * entries reads on in reads this large, not the page size (?limit=1 was one query per entry).
 */
const FILTERED_READ = 1000;

function checkQuery(query: DeviceQuery): { limit: number; start?: Key; policy?: CompiledPolicy } {
  checkProduct(query.product);
  const limit = query.limit ?? DEFAULT_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new ValidationError(`Invalid --limit ${limit}: use a whole number from 1 to ${MAX_PAGE}`);
  if (query.version !== undefined) parseVersion(query.version, '--version');
  if (query.idPrefix !== undefined && !isValidId(query.idPrefix))
    throw new ValidationError(`Invalid --id-prefix ${quoteInput(query.idPrefix)}: ${ID_RULE}`);
  if (query.where !== undefined && query.where.trim() === '')
    throw new ValidationError('Invalid --where "": give a policy expression, e.g. region == "eu"');
  return {
    limit,
    ...(query.next !== undefined ? { start: decodeCursor(query.next, query.product) } : {}),
    ...(query.where !== undefined ? { policy: compilePolicy(query.where) } : {}),
  };
}

async function lastOutcome(table: Table, product: string, id: string): Promise<LastOutcome | null> {
  const item = await table.get(keys.deviceLastUpdate(product, id));
  if (!item || (item.outcome !== 'success' && item.outcome !== 'failure')) return null;
  return {
    update: String(item.update),
    version: String(item.version),
    outcome: item.outcome,
    at: String(item.at),
  };
}

/**
 * Where a walk starts: after the cursor or, searching by id prefix, at the prefix itself. A query
 * resumes strictly after a key, so the device whose id is exactly the prefix comes from a get.
 */
async function walkStart(
  table: Table,
  query: DeviceQuery,
  cursor: Key | undefined,
): Promise<{ start?: Key; exact?: Item }> {
  const prefix = query.idPrefix;
  if (prefix === undefined || (cursor !== undefined && cursor.sk >= prefix))
    return cursor ? { start: cursor } : {};
  const exact = await table.get(keys.device(query.product, prefix));
  return { start: keys.device(query.product, prefix), ...(exact ? { exact } : {}) };
}

/** One page of a product's devices, in id order, filtered by id prefix, version and policy. */
export function listDevices(cloud: CloudRecords, query: DeviceQuery): Promise<DevicePage> {
  return adminOperation(cloud.store, async () => {
    const { limit, start, policy } = checkQuery(query);
    const { product, version, idPrefix = '' } = query;
    const matches = (item: Item) => {
      if (version !== undefined && item.version !== version) return false;
      if (!policy) return true;
      // An entry with a broken version cannot have come from a valid checkin: it matches nothing.
      return isSemver(String(item.version)) && evaluateFor(policy, deviceOfEntry(product, item)) === true;
    };
    const seek = await walkStart(cloud.table, query, start);
    const listed: Item[] = seek.exact && matches(seek.exact) ? [seek.exact] : [];
    let scanned = seek.exact ? 1 : 0;
    let cursor = seek.start;
    let more = true;
    let reads = 0;
    while (more && listed.length < limit && (scanned === 0 || scanned < FILTERED_SCAN_BOUND)) {
      const size = reads++ === 0 ? limit : Math.max(limit, FILTERED_READ);
      const page = await registryPage(cloud.table, product, size, cursor);
      more = page.next !== undefined;
      cursor = page.next;
      for (const [i, item] of page.items.entries()) {
        scanned++;
        // Ids sort in order: the first one without the prefix ends the search.
        if (!String(item.sk).startsWith(idPrefix)) {
          more = false;
          break;
        }
        if (!matches(item)) continue;
        listed.push(item);
        if (listed.length === limit) {
          // Resume after this device, unless it was the registry's last.
          more = more || i < page.items.length - 1;
          cursor = { pk: String(item.pk), sk: String(item.sk) };
          break;
        }
      }
    }
    const devices = await Promise.all(
      listed.map(async (item) => ({
        id: String(item.sk),
        version: String(item.version),
        lastSeen: typeof item.lastSeen === 'string' ? item.lastSeen : '',
        lastUpdate: await lastOutcome(cloud.table, product, String(item.sk)),
      })),
    );
    return { product, devices, scanned, ...(more && cursor ? { next: encodeCursor(cursor) } : {}) };
  });
}

const REPORT_STATUSES: ReadonlySet<string> = new Set([
  'downloaded',
  'verified',
  'applied',
  'failed',
  'rejected',
]);

export interface DeviceReportEntry {
  readonly status: ReportStatus;
  readonly success: boolean;
  readonly at: string;
  readonly error?: string;
}

export interface DeviceUpdateHistory {
  readonly update: string;
  readonly version: string;
  /** When the device was granted the update (ISO 8601). */
  readonly offered: string;
  readonly outcome: 'success' | 'failure' | null;
  /** Reports in the order they arrived: downloaded, verified, applied / failed / rejected. */
  readonly reports: readonly DeviceReportEntry[];
}

export interface DeviceDetail {
  readonly product: string;
  readonly id: string;
  readonly version: string;
  readonly lastSeen: string;
  readonly properties: DeviceObject;
  /** The updates offered to the device, latest first. */
  readonly history: readonly DeviceUpdateHistory[];
}

async function reportsOf(table: Table, updateId: string, deviceId: string): Promise<DeviceReportEntry[]> {
  const prefix = `${deviceId}#`;
  const items = await table.query(keys.reportsOf(updateId).pk, prefix, true);
  return (
    items
      // A device whose id extends this one with '#…' shares the prefix: keep exact statuses only.
      .filter((item) => REPORT_STATUSES.has(String(item.sk).slice(prefix.length)))
      .map((item) => ({
        status: String(item.sk).slice(prefix.length) as ReportStatus,
        success: item.success === true,
        at: String(item.at),
        ...(typeof item.error === 'string' ? { error: item.error } : {}),
      }))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
  );
}

/** One device: its properties as last sent, and every update offered to it with its reports. */
export function showDevice(
  cloud: CloudRecords,
  selector: { product: string; id: string },
): Promise<DeviceDetail> {
  return adminOperation(cloud.store, async () => {
    const { product, id } = selector;
    checkProduct(product);
    if (id === '') throw new ValidationError('Missing device id: pass --id ID');
    const { table } = cloud;
    const entry = await table.get(keys.device(product, id), true);
    if (!entry)
      throw new NotFoundError(
        `No device "${id}" in the registry of ${product}: see updraft devices --product ${product}`,
      );
    const updates = await updatesOf(table, product);
    const offered = await Promise.all(
      updates.map(async (u): Promise<DeviceUpdateHistory | undefined> => {
        const grant = await table.get(keys.grant(u.id, id), true);
        if (!grant) return undefined;
        const outcome = grant.outcome === 'success' || grant.outcome === 'failure' ? grant.outcome : null;
        return {
          update: u.id,
          version: u.version,
          offered: String(grant.at),
          outcome,
          reports: await reportsOf(table, u.id, id),
        };
      }),
    );
    return {
      product,
      id,
      version: String(entry.version),
      lastSeen: typeof entry.lastSeen === 'string' ? entry.lastSeen : '',
      properties: propertiesOf(entry),
      history: offered
        .filter((h) => h !== undefined)
        .sort((a, b) => (a.offered < b.offered ? 1 : a.offered > b.offered ? -1 : 0)),
    };
  });
}
