/**
 * Fleet aggregates (DESIGN §10), maintained on write so that what builders see is O(1) in fleet
 * size: devices per version (one item per product and shard, `D#<shard>`), devices seen per day and
 * their versions (`Y#<day>#<shard>`), and per update and per product an hourly series of the update
 * metrics (`H#<hour>#<scope>#<shard>`); day and hour items expire after AGGREGATES.retentionDays.
 * Items stay small on purpose: DynamoDB bills a write by the size of the whole item, twice in a
 * transaction.
 *
 * A device's counts change in the same transaction as its registry entry (on the local cloud, the
 * same batch of many devices' changes: functions/embedded-batch.ts), conditional on the entry as
 * read: the version it was counted on and its last seen day are the entry's own, so a retry or a
 * concurrent checkin of the same device moves nothing twice. Entries written by a version without
 * aggregates carry no `counted` mark; they are counted once, by the first write that finds them or by
 * `backfillDeviceCounts`. Counters that many devices touch live on AGGREGATES.deviceShards items
 * chosen by a hash of the device id, summed on read (config.ts says why that many).
 */
import { AGGREGATES } from './config.ts';
import { type ConflictReporter, transactThroughConflicts } from './conflicts.ts';
import {
  type Item,
  type Scalar,
  type Table,
  type TransactWrite,
  transactionToken,
  type UpdateSpec,
} from './dynamo.ts';
import { TransactionConflictError } from './errors.ts';
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
export function shardOf(deviceId: string, shards: number = AGGREGATES.deviceShards): number {
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
 * The counter writes that move a device from `before` (undefined: not counted) to its entry
 * `after`; none when nothing changes (same version, already seen that day). Two items at most:
 * the device's count shard (its version's count, only when the version changes) and the shard of
 * the day (distinct devices seen that day, and per version: the version of each device's latest
 * checkin of the day). Day items are small and expire after the retention, so a daily checkin
 * writes ~100 bytes of counts, whatever the retention. `uncounted`: the last seen day and version
 * of an entry written before aggregates, counted too.
 */
export function countWrites(
  product: string,
  deviceId: string,
  before: CountedState | undefined,
  after: { readonly version: string; readonly lastSeen: string },
  uncounted?: CountedState,
): TransactWrite[] {
  const day = dayOf(after.lastSeen);
  const shard = shardOf(deviceId);
  const writes: TransactWrite[] = [];
  const moved = before?.version !== after.version;
  if (moved) {
    const add: Record<string, number> = { [versionCount(after.version)]: 1 };
    if (before) add[versionCount(before.version)] = -1;
    writes.push({
      key: keys.deviceCounts(product, shard),
      update: { add, set: { [versionSeen(after.version)]: after.lastSeen } },
    });
  }
  const today: Record<string, number> = {};
  if (before?.day !== day) {
    today.seen = 1;
    today[versionCount(after.version)] = 1;
  } else if (moved) {
    today[versionCount(after.version)] = 1;
    today[versionCount(before.version)] = -1;
  }
  if (Object.keys(today).length > 0) writes.push(dayWrite(product, day, shard, today, after));
  if (uncounted && uncounted.day < day)
    writes.push(dayWrite(product, uncounted.day, shard, { seen: 1, [versionCount(uncounted.version)]: 1 }));
  return writes;
}

/** Adds `add` to the day's item of a shard (expiring after the retention); `seen` stamps a version's sighting. */
export function dayWrite(
  product: string,
  day: string,
  shard: number,
  add: Record<string, number>,
  seen?: { readonly version: string; readonly lastSeen: string },
): TransactWrite {
  const expires = Math.ceil(Date.parse(day) / 1000) + (AGGREGATES.retentionDays + 1) * 86_400;
  return {
    key: keys.daySeen(product, day, shard),
    update: { add, set: { expires, ...(seen ? { [versionSeen(seen.version)]: seen.lastSeen } : {}) } },
  };
}

/** Registry transactions' tokens start with this, so a reader of the table can tell them apart. */
export const REGISTRY_TOKEN_PREFIX = 'dev';

/** `left`: not written, its count shard stayed conflicted (see writeCounted). */
export type CountedWrite = 'written' | 'stale' | 'left';

/**
 * What writing `entry` over `stored` takes: the entry's update, conditional on the stored entry's
 * counted state (version, day, mark) being still `stored`'s (other checkins of the same day and
 * version may write in between), and the counter writes of its change (none when nothing is
 * counted anew). Undefined when `stored` is of a later day: that checkin counted the device.
 * writeCounted writes them in one transaction; the local cloud's registry many devices' changes
 * together (functions/registry-rounds.ts).
 */
export function countedChange(
  product: string,
  entry: DeviceEntry,
  stored: Item | undefined,
): { readonly registry: UpdateSpec; readonly counts: TransactWrite[] } | undefined {
  const before = countedStateOf(stored);
  if (before && before.day > dayOf(entry.lastSeen)) return undefined;
  const uncounted =
    stored && !before && typeof stored.lastSeen === 'string'
      ? { day: dayOf(stored.lastSeen), version: String(stored.version) }
      : undefined;
  const { pk: _pk, sk: _sk, ...attributes } = { ...entry, counted: true as const };
  return {
    registry: { set: attributes, ...sameCountedState(stored, before) },
    counts: countWrites(product, entry.sk, before, entry, uncounted),
  };
}

/**
 * Writes `entry` and counts its change together (DESIGN §5), as countedChange plans them. `stale`
 * when the stored entry's counted state changed since it was read (read it again and retry). An
 * entry older than the stored one's day is not written: the newer one counted it.
 *
 * On DynamoDB, transactions of other devices on the same count shard cancel this one
 * (TransactionConflict); it is sent again through functions/conflicts.ts. With `conflicts`, a
 * transaction still conflicted after that is given up (`left`): it was all or nothing, so the
 * entry and its counts stay as they were, and the device's next checkin counts it. The checkin is
 * answered as usual; a view a little late beats a device told to come back. Without `conflicts`
 * (the backfill) the TransactionConflictError is thrown.
 */
export async function writeCounted(
  table: Table,
  product: string,
  entry: DeviceEntry,
  stored: Item | undefined,
  conflicts?: ConflictReporter,
): Promise<CountedWrite> {
  const change = countedChange(product, entry, stored);
  if (!change) return 'written';
  const key = { pk: entry.pk, sk: entry.sk };
  if (change.counts.length === 0) return (await table.update(key, change.registry)) ? 'written' : 'stale';
  // The counters first: on the embedded store a failed registry condition then undoes them by itself.
  const writes: TransactWrite[] = [...change.counts, { key, update: change.registry }];
  try {
    const token = REGISTRY_TOKEN_PREFIX + transactionToken();
    return (await transactThroughConflicts(table, writes, token)).ok ? 'written' : 'stale';
  } catch (err) {
    if (!(err instanceof TransactionConflictError) || !conflicts) throw err;
    conflicts.gaveUp(product);
    return 'left';
  }
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
  /**
   * Latest first checkin of a day of a device on this version within the days read, or else its
   * latest move onto it (ISO 8601): see admin's VersionCount.
   */
  readonly lastSeen: string;
}

export interface DaySeenCounts {
  /** yyyy-mm-dd (UTC). */
  readonly day: string;
  /** Distinct devices that checked in that day. */
  readonly devices: number;
  /**
   * Those devices by the version of their latest checkin that day (versions with none left out).
   * Days counted by a cloud version before per-day items have none.
   */
  readonly versions: Readonly<Record<string, number>>;
}

export interface DeviceCounts {
  readonly devices: number;
  /** Versions with at least one device, in no particular order. */
  readonly versions: readonly VersionDevices[];
  /** Distinct devices seen per day (the days asked for, those with any), latest first. */
  readonly seenPerDay: readonly DaySeenCounts[];
}

/** Versions' counts and latest sightings summed over shard items (attributes `v_…` and `s_…`). */
class VersionSums {
  readonly counts = new Map<string, number>();
  readonly seen = new Map<string, string>();

  addItem(item: Item): void {
    for (const [name, value] of Object.entries(item)) {
      if (name.startsWith('v_') && typeof value === 'number') {
        const version = decodeName(name.slice(2));
        this.counts.set(version, (this.counts.get(version) ?? 0) + value);
      } else if (name.startsWith('s_') && typeof value === 'string') {
        const version = decodeName(name.slice(2));
        if (value > (this.seen.get(version) ?? '')) this.seen.set(version, value);
      }
    }
  }

  positive(): Record<string, number> {
    return Object.fromEntries([...this.counts].filter(([, n]) => n > 0));
  }
}

/**
 * Days counted by the previous version on a version shard, as `d_yyyymmdd` attributes (until
 * `stats --backfill` moves them onto day items): [day, devices, attribute name].
 */
export function legacyDaysOf(shard: Item): [day: string, devices: number, name: string][] {
  return Object.entries(shard).flatMap(([name, value]) =>
    /^d_\d{8}$/.test(name) && typeof value === 'number'
      ? [[`${name.slice(2, 6)}-${name.slice(6, 8)}-${name.slice(8, 10)}`, value, name]]
      : [],
  ) as [string, number, string][];
}

/**
 * Sums the product's count shards: AGGREGATES.deviceShards items for the versions, and as many per day
 * for the last `days` days (up to `now`'s) of devices seen, whatever the fleet size. Reads one
 * query for the versions and one per day.
 */
export async function readDeviceCounts(
  table: Table,
  product: string,
  days = 7,
  now = Date.now(),
): Promise<DeviceCounts> {
  const wanted = Array.from({ length: Math.min(days, AGGREGATES.retentionDays) }, (_, i) =>
    dayOf(now - i * DAY_MS),
  );
  const { pk, skPrefix } = keys.deviceCountsOf(product);
  const [shards, dayItems] = await Promise.all([
    table.query(pk, skPrefix, true),
    table.query(pk, keys.daysSeenBetween(product, wanted.at(-1) ?? dayOf(now), dayOf(now)).sk),
  ]);
  const byDay = new Map<string, Item[]>();
  for (const item of dayItems) {
    const day = String(item.sk).slice(2, 12);
    byDay.set(day, [...(byDay.get(day) ?? []), item]);
  }
  const versions = new VersionSums();
  const legacy = new Map<string, number>();
  for (const item of shards ?? []) {
    versions.addItem(item);
    for (const [day, devices] of legacyDaysOf(item)) legacy.set(day, (legacy.get(day) ?? 0) + devices);
  }
  const seenPerDay: DaySeenCounts[] = [];
  for (const day of wanted) {
    const perVersion = new VersionSums();
    let devices = legacy.get(day) ?? 0;
    for (const item of byDay.get(day) ?? []) {
      perVersion.addItem(item);
      devices += typeof item.seen === 'number' ? item.seen : 0;
    }
    for (const [version, at] of perVersion.seen)
      if (at > (versions.seen.get(version) ?? '')) versions.seen.set(version, at);
    if (devices > 0) seenPerDay.push({ day, devices, versions: perVersion.positive() });
  }
  const counted = Object.entries(versions.positive()).map(([version, devices]) => ({
    version,
    devices,
    lastSeen: versions.seen.get(version) ?? '',
  }));
  return { devices: counted.reduce((sum, v) => sum + v.devices, 0), versions: counted, seenPerDay };
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
 * oldest first, every hour present (zeros where nothing was counted). One query: the hours' items
 * are one run of sort keys.
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
  const { pk, sk } = keys.seriesBetween(product, first, range.at(-1) ?? first);
  for (const item of await table.query(pk, sk, true)) {
    const [, hour = '', scope = ''] = String(item.sk).split('#');
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
