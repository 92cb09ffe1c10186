/**
 * A product's statistics, read from aggregates only (DESIGN §10: O(1) in fleet size): devices per
 * version and seen per day from the count shards, per-update counters, the hourly series of the
 * product and of each update, and the daily metrics the local cloud flushed to the table (named
 * after Ioto's, DESIGN §4.6). What the console shows is this, as it is.
 */

import { ValidationError } from '#core/errors.ts';
import { phaseStatusOf } from '#core/phases.ts';
import type { UpdateRecord } from '#core/types.ts';
import { compareVersions, isSemver, sortByVersionDescending } from '#core/version.ts';
import {
  type DaySeenCounts,
  type DeviceCounts,
  type DeviceEntry,
  readDeviceCounts,
  readSeries,
  type SeriesPoint,
  writeCounted,
} from '#functions/aggregates.ts';
import { AGGREGATES } from '#functions/config.ts';
import type { Item } from '#functions/dynamo.ts';
import { TransactionConflictError } from '#functions/errors.ts';
import { keys, METRICS, type MetricName } from '#functions/keys.ts';
import type { CloudRecords } from './cloud.ts';
import { moveLegacyDayCounts } from './day-counts-backfill.ts';
import { adminOperation } from './errors.ts';
import { backfillFailureReasons } from './failure-backfill.ts';
import { checkProduct } from './settings.ts';
import { updatesOf } from './updates.ts';

export interface VersionCount {
  readonly version: string;
  readonly devices: number;
  /**
   * Latest first checkin of a day of a device on this version within the days read (ISO 8601);
   * for a version no device was seen on in those days, when a device last moved to it. Devices
   * check in daily, so a version with live devices is always within them.
   */
  readonly lastSeen: string;
}

export interface UpdateStats {
  readonly id: string;
  readonly version: string;
  readonly enabled: boolean;
  readonly paused: boolean;
  readonly started: number;
  readonly success: number;
  readonly failure: number;
  readonly deferred: number;
  readonly limit?: number;
  /**
   * Devices the update can reach, estimated from the aggregates (O(1)): those on a lower version
   * now (on any other version for a downgrade with a policy) plus those it already moved, in its
   * share (the current phase's, or its percentage). Its policy is not applied, so the policy may
   * match fewer (`policy check --product` scans for that).
   */
  readonly eligible: number;
}

export type { SeriesPoint };

/** Distinct devices seen on a day (UTC), and by the version of their latest checkin that day. */
export type DaySeen = DaySeenCounts;

export type DayMetrics = { readonly day: string } & Readonly<Record<MetricName, number>>;

export interface ProductStats {
  readonly product: string;
  readonly devices: number;
  /** Highest version first. */
  readonly versions: readonly VersionCount[];
  /** Highest version first. */
  readonly updates: readonly UpdateStats[];
  /** Latest day first, at most `days` of them (the local cloud's; Lambda's go to CloudWatch). */
  readonly metrics: readonly DayMetrics[];
  /** Distinct devices seen per day, latest first, at most `days` of them. */
  readonly seen: readonly DaySeen[];
  /** Hours in each series below. */
  readonly hours: number;
  /** Hourly series, oldest hour first, every hour of the last `hours` present (zeros included). */
  readonly series: {
    readonly product: readonly SeriesPoint[];
    /** Per update id, for updates with counts in those hours. */
    readonly updates: Readonly<Record<string, readonly SeriesPoint[]>>;
  };
}

export interface StatsOptions {
  /** Days of daily metrics and devices seen (default 7). */
  readonly days?: number;
  /** Hours of hourly series (default 24, at most the retention). */
  readonly hours?: number;
  readonly now?: number;
}

const MAX_HOURS = AGGREGATES.retentionDays * 24;

/** Devices per version, highest first; versions that are not semver come last. */
function versionCounts(counts: DeviceCounts): VersionCount[] {
  const counted = counts.versions.map((v) => ({ ...v }));
  return [
    ...sortByVersionDescending(counted.filter((v) => isSemver(v.version))),
    ...counted.filter((v) => !isSemver(v.version)),
  ];
}

/** The share of devices an update admits now: its phase's, as the phase ledger decides it. */
function shareOf(update: UpdateRecord, now: number): number {
  try {
    return phaseStatusOf(update, now)?.percentage ?? update.percentage ?? 100;
  } catch {
    return 0; // a stored plan that no longer parses admits nobody new (functions/phase-ledger.ts)
  }
}

/** See UpdateStats.eligible. */
function eligibleEstimate(update: UpdateRecord, counts: DeviceCounts, now: number): number {
  // Selection's own rule (functions/selection.ts): a downgrade with a policy is offered above too.
  const downgrades = update.allowDowngrade && update.policy.trim() !== '';
  const reachable = counts.versions
    .filter((v) => {
      if (!isSemver(v.version)) return false;
      const order = compareVersions(v.version, update.version);
      return order < 0 || (downgrades && order > 0);
    })
    .reduce((sum, v) => sum + v.devices, 0);
  const share = shareOf(update, now);
  return Math.max(Math.round(((reachable + update.counters.success) * share) / 100), update.counters.started);
}

/** The latest `days` days of metrics, latest first. */
function dailyMetrics(items: readonly Item[], days: number): DayMetrics[] {
  return items
    .map((item) => {
      const day: Record<string, number | string> = { day: String(item.sk) };
      for (const name of METRICS) day[name] = typeof item[name] === 'number' ? item[name] : 0;
      return day as DayMetrics;
    })
    .sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0))
    .slice(0, days);
}

function checkWhole(flag: string, n: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new ValidationError(`Invalid --${flag} ${n}: use a whole number from 1 to ${max}`);
}

/** `options`: the days of metrics (a number, as before) or StatsOptions. */
export function productStats(
  cloud: CloudRecords,
  product: string,
  options: number | StatsOptions = {},
): Promise<ProductStats> {
  const {
    days = 7,
    hours = 24,
    now = Date.now(),
  } = typeof options === 'number' ? { days: options } : options;
  return adminOperation(cloud.store, async () => {
    checkProduct(product);
    if (!Number.isSafeInteger(days) || days < 1)
      throw new ValidationError(`Invalid --days ${days}: use a whole number ≥ 1`);
    checkWhole('hours', hours, MAX_HOURS);
    const { table } = cloud;
    const [updates, counts, metricItems, series] = await Promise.all([
      updatesOf(table, product),
      readDeviceCounts(table, product, days, now),
      table.query(keys.metricsOf(product).pk),
      readSeries(table, product, hours, now),
    ]);
    return {
      product,
      devices: counts.devices,
      versions: versionCounts(counts),
      updates: updates.map((u) => ({
        id: u.id,
        version: u.version,
        enabled: u.enabled,
        paused: u.paused,
        ...u.counters,
        ...(u.limit !== undefined ? { limit: u.limit } : {}),
        eligible: eligibleEstimate(u, counts, now),
      })),
      metrics: dailyMetrics(metricItems, days),
      seen: counts.seenPerDay,
      hours,
      series,
    };
  });
}

export interface BackfillResult {
  /** Registry entries read. */
  readonly devices: number;
  /** Entries counted now: written by a version of the cloud without aggregates. */
  readonly counted: number;
  /** Failed devices put into their failure reason's group now (failures from before groups). */
  readonly failures: number;
  /** Day counts moved from the version shards onto day items now (days counted before those). */
  readonly days: number;
}

/**
 * Counts, once, the registry entries a cloud without aggregates wrote (issue 13.6): each entry
 * without its `counted` mark is counted together with setting the mark, conditional on the entry
 * as read, so running it again, stopping it half way or devices checking in meanwhile never counts
 * a device twice. Then groups failures recorded before failure groups (admin/failure-backfill.ts)
 * and moves days counted before day items (admin/day-counts-backfill.ts), as exactly. Reads the
 * whole registry and every update's grants: a migration, not a view.
 */
export function backfillDeviceCounts(
  cloud: CloudRecords,
  product: string,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<BackfillResult> {
  return adminOperation(cloud.store, async () => {
    checkProduct(product);
    const { table } = cloud;
    const entries = await table.query(keys.devicesOf(product).pk, undefined, true);
    let counted = 0;
    let done = 0;
    const backfill = async (entry: Item) => {
      for (let stored: Item | undefined = entry; stored && stored.counted !== true; ) {
        const device: DeviceEntry = {
          pk: String(stored.pk),
          sk: String(stored.sk),
          version: String(stored.version),
          lastSeen: String(stored.lastSeen),
          properties: typeof stored.properties === 'string' ? stored.properties : '{}',
        };
        try {
          if ((await writeCounted(table, product, device, stored)) === 'written') {
            counted++;
            break;
          }
        } catch (err) {
          // Its count shard stayed busy with checkins: a migration can wait, read it again.
          if (!(err instanceof TransactionConflictError)) throw err;
        }
        stored = await table.get({ pk: device.pk, sk: device.sk }, true);
      }
      if (++done % 1000 === 0 || done === entries.length) onProgress(done, entries.length);
    };
    let next = 0;
    const worker = async () => {
      while (next < entries.length) await backfill(entries[next++]!);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const failures = await backfillFailureReasons(table, await updatesOf(table, product));
    const days = await moveLegacyDayCounts(table, product);
    return { devices: entries.length, counted, failures, days };
  });
}
