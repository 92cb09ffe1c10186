/**
 * Fleet aggregates (DESIGN §10), maintained on write so that what builders see is O(1) in fleet
 * size: devices per version and devices seen per day (one item per product and shard, `D#<shard>`),
 * and per update and per product an hourly series of the update metrics (`H#<hour>#<scope>#<shard>`,
 * expiring after AGGREGATES.retentionDays).
 *
 * A device's counts change in the same transaction as its registry entry, conditional on the entry
 * as read: the version it was counted on and its last seen day are the entry's own, so a retry or a
 * concurrent checkin of the same device moves nothing twice. Entries written by a version without
 * aggregates carry no `counted` mark; they are counted once, by the first write that finds them or by
 * `backfillDeviceCounts`. Counters that many devices touch live on AGGREGATES.shards items chosen by
 * a hash of the device id, summed on read.
 */
import { AGGREGATES } from './config.ts';
import {
  type Item,
  type Scalar,
  type Table,
  type TransactWrite,
  transactionToken,
  type UpdateSpec,
} from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';

export const SERIES_METRICS = [
  'UpdateRequests',
  'UpdateDeferred',
  'UpdateStarted',
  'UpdateSuccess',
  'UpdateFailure',
] as const;
export type SeriesMetric = (typeof SERIES_METRICS)[number];
export const isSeriesMetric = (name: string): name is SeriesMetric =>
  (SERIES_METRICS as readonly string[]).includes(name);

/** The scope of a product's own series (an update's is its id). */
export const PRODUCT_SCOPE = '*';

const DAY_MS = 24 * 60 * 60 * 1000;
export const dayOf = (at: number | string): string => new Date(at).toISOString().slice(0, 10);
export const hourOf = (at: number): string => new Date(at).toISOString().slice(0, 13);

/** The shard of a device's counters: FNV-1a of its id, stable across processes. */
export function shardOf(deviceId: string, shards: number = AGGREGATES.shards): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) hash = Math.imul(hash ^ deviceId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % shards;
}

/** Attribute names must fit DynamoDB's `#name` placeholders: anything but [A-Za-z0-9] becomes _hh. */
const encodeName = (s: string) =>
  s.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const decodeName = (s: string) =>
  s.replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
const versionCount = (version: string) => `v_${encodeName(version)}`;
const versionSeen = (version: string) => `s_${encodeName(version)}`;
const daySeen = (day: string) => `d_${day.replaceAll('-', '')}`;

/** What the aggregates counted of a device: its version and the last day it was counted seen. */
export interface CountedState {
  readonly version: string;
  readonly day: string;
}

/** A registry entry as stored: `counted` marks entries whose device the aggregates hold. */
export type DeviceEntry = ReturnType<typeof keys.device> & {
  version: string;
  lastSeen: string;
  properties: string;
  counted?: true;
};

/** What the aggregates hold of a stored registry entry; undefined when it is not counted (yet). */
export function countedStateOf(entry: Item | undefined): CountedState | undefined {
  if (entry?.counted !== true || typeof entry.lastSeen !== 'string') return undefined;
  return { version: String(entry.version), day: dayOf(entry.lastSeen) };
}

/**
 * The counter write that moves a device from `before` (undefined: not counted) to its entry
 * `after`; undefined when nothing changes (same version, already seen that day). `uncountedDay`:
 * the last seen day of an entry written before aggregates, counted too. It also stamps the
 * version's latest sighting and drops day counts older than the retention.
 */
export function countWrite(
  product: string,
  deviceId: string,
  before: CountedState | undefined,
  after: { readonly version: string; readonly lastSeen: string },
  uncountedDay?: string,
): TransactWrite | undefined {
  const day = dayOf(after.lastSeen);
  const add: Record<string, number> = {};
  if (uncountedDay !== undefined && uncountedDay < day) add[daySeen(uncountedDay)] = 1;
  if (before?.version !== after.version) {
    add[versionCount(after.version)] = 1;
    if (before) add[versionCount(before.version)] = -1;
  }
  if (before?.day !== day) add[daySeen(day)] = 1;
  if (Object.keys(add).length === 0) return undefined;
  const today = Date.parse(day);
  // A shard is written by some device every day, so removing the week past the retention suffices.
  const expired = Array.from({ length: 7 }, (_, i) =>
    daySeen(dayOf(today - (AGGREGATES.retentionDays + 1 + i) * DAY_MS)),
  );
  return {
    key: keys.deviceCounts(product, shardOf(deviceId)),
    update: { add, set: { [versionSeen(after.version)]: after.lastSeen }, remove: expired },
  };
}

/** Registry transactions' tokens start with this, so a reader of the table can tell them apart. */
export const REGISTRY_TOKEN_PREFIX = 'dev';

/**
 * Writes `entry` and counts its change together (DESIGN §5), conditional on the stored entry's
 * counted state (version, day, mark) being still `stored`'s: other checkins of the same day and
 * version may write in between. False when that state changed since it was read (read it again and
 * retry). An entry older than the stored one's day is not written: the newer one counted it.
 */
export async function writeCounted(
  table: Table,
  product: string,
  entry: DeviceEntry,
  stored: Item | undefined,
): Promise<boolean> {
  const before = countedStateOf(stored);
  if (before && before.day > dayOf(entry.lastSeen)) return true;
  const uncountedDay =
    stored && !before && typeof stored.lastSeen === 'string' ? dayOf(stored.lastSeen) : undefined;
  const counted = countWrite(product, entry.sk, before, entry, uncountedDay);
  const { pk, sk, ...attributes } = { ...entry, counted: true as const };
  const registryWrite: TransactWrite = {
    key: { pk, sk },
    update: { set: attributes, ...sameCountedState(stored, before) },
  };
  if (!counted) return (await table.update({ pk, sk }, registryWrite.update)) !== undefined;
  // The counter first: on the embedded store a failed registry condition then undoes it by itself.
  const writes = [counted, registryWrite];
  const token = REGISTRY_TOKEN_PREFIX + transactionToken();
  for (let attempt = 1; ; attempt++) {
    try {
      return (await table.transact(writes, token)).ok;
    } catch (err) {
      // On DynamoDB another transaction on the same shard cancels this one (TransactionConflict):
      // sent again with the same token, it is applied once.
      if (!(err instanceof StoreUnavailableError) || attempt >= CONFLICT_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}

const CONFLICT_ATTEMPTS = 3;

/**
 * What writing `entry` over `stored` takes, for callers that write many entries together
 * (functions/registry-rounds.ts): the entry's update, conditional on `stored`'s counted state as
 * writeCounted's, and the count write of the change (absent when nothing is counted anew);
 * undefined when `stored` is of a later day (it counted the device already).
 */
export function countedChange(
  product: string,
  entry: DeviceEntry,
  stored: Item | undefined,
): { readonly registry: UpdateSpec; readonly counts?: TransactWrite } | undefined {
  const before = countedStateOf(stored);
  if (before && before.day > dayOf(entry.lastSeen)) return undefined;
  const uncountedDay =
    stored && !before && typeof stored.lastSeen === 'string' ? dayOf(stored.lastSeen) : undefined;
  const counts = countWrite(product, entry.sk, before, entry, uncountedDay);
  const { pk: _pk, sk: _sk, ...attributes } = { ...entry, counted: true as const };
  const registry = { set: attributes, ...sameCountedState(stored, before) };
  return counts ? { registry, counts } : { registry };
}

function sameCountedState(stored: Item | undefined, before: CountedState | undefined) {
  if (!stored) return { condition: 'attribute_not_exists(pk)' };
  const names = { '#counted': 'counted', '#version': 'version', '#lastSeen': 'lastSeen' };
  const values: Record<string, Scalar> = { ':ov': stored.version ?? null };
  if (!before) return { condition: '#version = :ov AND attribute_not_exists(#counted)', names, values };
  return {
    condition: '#version = :ov AND attribute_exists(#counted) AND begins_with(#lastSeen, :oday)',
    names,
    values: { ...values, ':oday': before.day },
  };
}

export interface VersionDevices {
  readonly version: string;
  readonly devices: number;
  /** Latest first checkin of a day (or move) of a device on this version (ISO 8601). */
  readonly lastSeen: string;
}

export interface DeviceCounts {
  readonly devices: number;
  /** Versions with at least one device, in no particular order. */
  readonly versions: readonly VersionDevices[];
  /** Distinct devices seen per day (yyyy-mm-dd), latest first. */
  readonly seenPerDay: readonly { readonly day: string; readonly devices: number }[];
}

/** Sums the product's device count shards: AGGREGATES.shards items, whatever the fleet size. */
export async function readDeviceCounts(table: Table, product: string): Promise<DeviceCounts> {
  const { pk, skPrefix } = keys.deviceCountsOf(product);
  const versions = new Map<string, { devices: number; lastSeen: string }>();
  const days = new Map<string, number>();
  for (const item of await table.query(pk, skPrefix, true)) {
    for (const [name, value] of Object.entries(item)) {
      if (name.startsWith('v_') && typeof value === 'number') {
        const version = decodeName(name.slice(2));
        const entry = versions.get(version) ?? { devices: 0, lastSeen: '' };
        entry.devices += value;
        versions.set(version, entry);
      } else if (name.startsWith('d_') && typeof value === 'number') {
        const day = `${name.slice(2, 6)}-${name.slice(6, 8)}-${name.slice(8, 10)}`;
        days.set(day, (days.get(day) ?? 0) + value);
      }
    }
    for (const [version, entry] of versions) {
      const seen = item[versionSeen(version)];
      if (typeof seen === 'string' && seen > entry.lastSeen) entry.lastSeen = seen;
    }
  }
  const counted = [...versions].filter(([, e]) => e.devices > 0).map(([version, e]) => ({ version, ...e }));
  return {
    devices: counted.reduce((sum, v) => sum + v.devices, 0),
    versions: counted,
    seenPerDay: [...days]
      .filter(([, n]) => n > 0)
      .map(([day, devices]) => ({ day, devices }))
      .sort((a, b) => (a.day < b.day ? 1 : -1)),
  };
}

/** Counts of one hour of a series. */
export type SeriesPoint = { readonly hour: string } & Readonly<Record<SeriesMetric, number>>;

/** One hour's sums of one scope, written to a shard as one ADD; the item expires after the retention. */
export function seriesWrite(
  product: string,
  hour: string,
  scope: string,
  counts: Readonly<Partial<Record<SeriesMetric, number>>>,
  shard: number,
) {
  const expires = Math.ceil(Date.parse(`${hour}:00:00Z`) / 1000) + AGGREGATES.retentionDays * 86_400;
  return {
    key: keys.series(product, hour, scope, shard),
    update: { add: counts as Record<string, number>, set: { expires } },
  };
}

/**
 * The last `hours` hours (up to `now`'s) of the product's series and of each update's that has any,
 * oldest first, every hour present (zeros where nothing was counted). Reads one query per day.
 */
export async function readSeries(
  table: Table,
  product: string,
  hours: number,
  now: number,
): Promise<{ product: SeriesPoint[]; updates: Record<string, SeriesPoint[]> }> {
  const range = Array.from({ length: hours }, (_, i) => hourOf(now - (hours - 1 - i) * 3_600_000));
  const first = range[0] ?? hourOf(now);
  const sums = new Map<string, Map<string, Record<string, number>>>();
  const days = [...new Set(range.map((h) => h.slice(0, 10)))];
  const pages = await Promise.all(
    days.map((day) =>
      table.query(keys.seriesOf(product, day).pk, keys.seriesOf(product, day).skPrefix, true),
    ),
  );
  for (const item of pages.flat()) {
    const [, hour = '', scope = ''] = String(item.sk).split('#');
    if (hour < first) continue;
    const perHour = sums.get(scope) ?? new Map<string, Record<string, number>>();
    sums.set(scope, perHour);
    const point = perHour.get(hour) ?? {};
    perHour.set(hour, point);
    for (const name of SERIES_METRICS) point[name] = (point[name] ?? 0) + (Number(item[name]) || 0);
  }
  const dense = (perHour: Map<string, Record<string, number>> | undefined): SeriesPoint[] =>
    range.map((hour) => {
      const point = perHour?.get(hour);
      return Object.fromEntries([
        ['hour', hour],
        ...SERIES_METRICS.map((n) => [n, point?.[n] ?? 0]),
      ]) as SeriesPoint;
    });
  const updates: Record<string, SeriesPoint[]> = {};
  for (const [scope, perHour] of sums) if (scope !== PRODUCT_SCOPE) updates[scope] = dense(perHour);
  return { product: dense(sums.get(PRODUCT_SCOPE)), updates };
}
