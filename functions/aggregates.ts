/**
 * Fleet aggregates (DESIGN §10), maintained on write so that what builders see is O(1) in fleet
 * size: devices per version, devices seen per day and per day and version (one item per product and
 * shard, `D#<shard>`),
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
import { type Item, type Scalar, type Table, type TransactWrite, transactionToken } from './dynamo.ts';
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
/** Devices seen on a day by the version they last had that day: `dv_<yyyymmdd>_<version>`. */
const dayVersionSeen = (day: string, version: string) =>
  `dv_${day.replaceAll('-', '')}_${encodeName(version)}`;
const dayOfName = (compact: string) => `${compact.slice(0, 4)}-${compact.slice(4, 6)}-${compact.slice(6, 8)}`;

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
 * `after`; undefined when nothing changes (same version, already seen that day). `uncounted`: an
 * entry written before aggregates (its version and last seen day), counted too. A device counts
 * once per day, on the version it last had that day: moving version within a day moves that day's
 * count. It also stamps the version's latest sighting and drops day counts older than the retention.
 */
export function countWrite(
  product: string,
  deviceId: string,
  before: CountedState | undefined,
  after: { readonly version: string; readonly lastSeen: string },
  uncounted?: CountedState,
): TransactWrite | undefined {
  const day = dayOf(after.lastSeen);
  const add: Record<string, number> = {};
  // A day past the retention is not counted: it would be removed by this very write.
  if (uncounted !== undefined && uncounted.day < day && uncounted.day >= oldestRetainedDay(day)) {
    add[daySeen(uncounted.day)] = 1;
    add[dayVersionSeen(uncounted.day, uncounted.version)] = 1;
  }
  if (before?.version !== after.version) {
    add[versionCount(after.version)] = 1;
    if (before) add[versionCount(before.version)] = -1;
  }
  if (before?.day !== day) {
    add[daySeen(day)] = 1;
    add[dayVersionSeen(day, after.version)] = 1;
  } else if (before.version !== after.version) {
    add[dayVersionSeen(day, before.version)] = -1;
    add[dayVersionSeen(day, after.version)] = 1;
  }
  if (Object.keys(add).length === 0) return undefined;
  return {
    key: keys.deviceCounts(product, shardOf(deviceId)),
    update: {
      add,
      set: { [versionSeen(after.version)]: after.lastSeen },
      remove: expiredNames(day, [...new Set([after.version, before?.version ?? after.version])]),
    },
  };
}

/**
 * The day counts past the retention on `day`: a shard is written by some device every day, so
 * removing the week past the retention suffices. Per version, only the versions written: the days
 * of a version no device of the shard has any more stay, ignored on read (readDeviceCounts).
 */
const oldestRetainedDay = (day: string) => dayOf(Date.parse(day) - AGGREGATES.retentionDays * DAY_MS);

function expiredNames(day: string, versions: readonly string[]): string[] {
  const today = Date.parse(day);
  const expired = Array.from({ length: 7 }, (_, i) =>
    dayOf(today - (AGGREGATES.retentionDays + 1 + i) * DAY_MS),
  );
  return [
    ...expired.map(daySeen),
    ...versions.flatMap((version) => expired.map((d) => dayVersionSeen(d, version))),
  ];
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
  const uncounted =
    stored && !before && typeof stored.lastSeen === 'string'
      ? { version: String(stored.version), day: dayOf(stored.lastSeen) }
      : undefined;
  const counted = countWrite(product, entry.sk, before, entry, uncounted);
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

/** Distinct devices seen on a day, by the version each last had that day. */
export interface DayVersions {
  /** yyyy-mm-dd (UTC). */
  readonly day: string;
  /** Devices per version; versions without a device that day are left out. */
  readonly versions: Readonly<Record<string, number>>;
}

export interface DeviceCounts {
  readonly devices: number;
  /** Versions with at least one device, in no particular order. */
  readonly versions: readonly VersionDevices[];
  /** Distinct devices seen per day (yyyy-mm-dd), latest first. */
  readonly seenPerDay: readonly { readonly day: string; readonly devices: number }[];
  /** The same devices by version, latest day first, days within the retention only. */
  readonly versionsPerDay: readonly DayVersions[];
}

/** Sums one day-and-version count into `days` (day → version → devices). */
function sumDayVersion(days: Map<string, Map<string, number>>, name: string, value: number) {
  const day = dayOfName(name.slice(3, 11));
  const version = decodeName(name.slice(12));
  const versions = days.get(day) ?? new Map<string, number>();
  versions.set(version, (versions.get(version) ?? 0) + value);
  days.set(day, versions);
}

/** Sums the product's device count shards: AGGREGATES.shards items, whatever the fleet size. */
export async function readDeviceCounts(
  table: Table,
  product: string,
  now: number = Date.now(),
): Promise<DeviceCounts> {
  const { pk, skPrefix } = keys.deviceCountsOf(product);
  return sumDeviceCounts(await table.query(pk, skPrefix, true), now);
}

/** The counts the shard items hold, summed; day-and-version counts past the retention on `now` left out. */
export function sumDeviceCounts(shards: readonly Item[], now: number): DeviceCounts {
  const versions = new Map<string, { devices: number; lastSeen: string }>();
  const days = new Map<string, number>();
  const dayVersions = new Map<string, Map<string, number>>();
  for (const item of shards) {
    for (const [name, value] of Object.entries(item)) {
      if (typeof value !== 'number') continue;
      if (name.startsWith('v_')) {
        const version = decodeName(name.slice(2));
        const entry = versions.get(version) ?? { devices: 0, lastSeen: '' };
        entry.devices += value;
        versions.set(version, entry);
      } else if (name.startsWith('d_')) {
        const day = dayOfName(name.slice(2));
        days.set(day, (days.get(day) ?? 0) + value);
      } else if (name.startsWith('dv_')) sumDayVersion(dayVersions, name, value);
    }
    for (const [version, entry] of versions) {
      const seen = item[versionSeen(version)];
      if (typeof seen === 'string' && seen > entry.lastSeen) entry.lastSeen = seen;
    }
  }
  const counted = [...versions].filter(([, e]) => e.devices > 0).map(([version, e]) => ({ version, ...e }));
  const oldest = oldestRetainedDay(dayOf(now));
  return {
    devices: counted.reduce((sum, v) => sum + v.devices, 0),
    versions: counted,
    seenPerDay: [...days]
      .filter(([, n]) => n > 0)
      .map(([day, devices]) => ({ day, devices }))
      .sort((a, b) => (a.day < b.day ? 1 : -1)),
    versionsPerDay: [...dayVersions]
      .filter(([day]) => day >= oldest)
      .map(([day, perVersion]) => ({
        day,
        versions: Object.fromEntries([...perVersion].filter(([, n]) => n > 0)),
      }))
      .filter((d) => Object.keys(d.versions).length > 0)
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
