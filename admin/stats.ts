/**
 * A product's statistics: devices per version from the registry, per-update counters, and the
 * daily metrics the cloud flushed to the table (named after Ioto's, DESIGN §4.6).
 */

import { ValidationError } from '#core/errors.ts';
import { isSemver, sortByVersionDescending } from '#core/version.ts';
import type { Item } from '#functions/dynamo.ts';
import { keys, METRICS, type MetricName } from '#functions/keys.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation } from './errors.ts';
import { checkProduct } from './settings.ts';
import { updatesOf } from './updates.ts';

export interface VersionCount {
  readonly version: string;
  readonly devices: number;
  /** Latest check-in of a device on this version (ISO 8601). */
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
}

export type DayMetrics = { readonly day: string } & Readonly<Record<MetricName, number>>;

export interface ProductStats {
  readonly product: string;
  readonly devices: number;
  /** Highest version first. */
  readonly versions: readonly VersionCount[];
  /** Highest version first. */
  readonly updates: readonly UpdateStats[];
  /** Latest day first, at most `days` of them. */
  readonly metrics: readonly DayMetrics[];
}

/** Devices per version, highest first; entries with a broken version come last. */
function versionCounts(devices: readonly Item[]): VersionCount[] {
  const perVersion = new Map<string, { devices: number; lastSeen: string }>();
  for (const d of devices) {
    const version = String(d.version);
    const lastSeen = typeof d.lastSeen === 'string' ? d.lastSeen : '';
    const entry = perVersion.get(version);
    if (!entry) perVersion.set(version, { devices: 1, lastSeen });
    else {
      entry.devices++;
      if (lastSeen > entry.lastSeen) entry.lastSeen = lastSeen;
    }
  }
  const counted = [...perVersion].map(([version, e]) => ({ version, ...e }));
  return [
    ...sortByVersionDescending(counted.filter((v) => isSemver(v.version))),
    ...counted.filter((v) => !isSemver(v.version)),
  ];
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

export function productStats(cloud: CloudRecords, product: string, days = 7): Promise<ProductStats> {
  return adminOperation(cloud.store, async () => {
    checkProduct(product);
    if (!Number.isSafeInteger(days) || days < 1)
      throw new ValidationError(`Invalid --days ${days}: use a whole number ≥ 1`);
    const { table } = cloud;
    const [updates, devices, metricItems] = await Promise.all([
      updatesOf(table, product),
      table.query(keys.devicesOf(product).pk),
      table.query(keys.metricsOf(product).pk),
    ]);
    return {
      product,
      devices: devices.length,
      versions: versionCounts(devices),
      updates: updates.map((u) => ({
        id: u.id,
        version: u.version,
        enabled: u.enabled,
        paused: u.paused,
        ...u.counters,
      })),
      metrics: dailyMetrics(metricItems, days),
    };
  });
}
