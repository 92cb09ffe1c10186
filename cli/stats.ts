/**
 * `updraft stats --product P`: devices per version from the registry, per-update counters, and the
 * daily metrics the cloud flushed to the table (named after Ioto's, DESIGN §4.6).
 */
import { isSemver, sortByVersionDescending } from '#core/version.ts';
import type { Table } from '#functions/dynamo.ts';
import { keys, METRICS, type MetricName } from '#functions/keys.ts';
import { listUpdates } from './updates.ts';

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

export async function productStats(table: Table, product: string, days = 7): Promise<ProductStats> {
  const [updates, devices, metricItems] = await Promise.all([
    listUpdates(table, product),
    table.query(keys.devicesOf(product).pk),
    table.query(keys.metricsOf(product).pk),
  ]);
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
  const versions = [
    ...sortByVersionDescending(counted.filter((v) => isSemver(v.version))),
    ...counted.filter((v) => !isSemver(v.version)),
  ];
  const metrics = metricItems
    .map((item) => {
      const day: Record<string, number | string> = { day: String(item.sk) };
      for (const name of METRICS) day[name] = typeof item[name] === 'number' ? item[name] : 0;
      return day as DayMetrics;
    })
    .sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0))
    .slice(0, days);
  return {
    product,
    devices: devices.length,
    versions,
    updates: updates.map((u) => ({
      id: u.id,
      version: u.version,
      enabled: u.enabled,
      paused: u.paused,
      ...u.counters,
    })),
    metrics,
  };
}
