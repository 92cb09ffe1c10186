/**
 * `updraft stats`: devices per version and seen per day, per-update counters, hourly series and
 * daily metrics of a product, read from the aggregates (its answer time does not grow with the
 * fleet). `--backfill` first counts the devices a cloud without aggregates registered and groups
 * its failures by reason.
 */
import type { ProductStats, SeriesPoint } from '#admin/index.ts';
import { type Command, loadAdmin, required } from '../command.ts';
import { UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';
import { statusOf, table } from '../format.ts';

function statsText(stats: ProductStats, days: number, showHours: boolean): string[] {
  const { product, devices, versions, updates, metrics } = stats;
  const lines = [`Product ${product}: ${devices} device${devices === 1 ? '' : 's'}`];
  if (versions.length) {
    const rows = versions.map((v) => [v.version, String(v.devices), v.lastSeen]);
    lines.push(table(['VERSION', 'DEVICES', 'LAST SEEN'], rows, '  '));
  }
  lines.push('\nUpdates');
  const updateRows = updates.map((u) =>
    [u.version, u.id, statusOf(u)].concat([u.started, u.success, u.failure, u.deferred].map(String)),
  );
  const updateHead = ['VERSION', 'ID', 'STATUS', 'STARTED', 'SUCCESS', 'FAILURE', 'DEFERRED'];
  lines.push(updates.length === 0 ? '  none' : table(updateHead, updateRows, '  '));
  lines.push(`\nMetrics (last ${days} day${days === 1 ? '' : 's'} with activity)`);
  const metricRows = metrics.map((m) => [
    m.day,
    ...[
      m.UpdateRequests,
      m.UpdateStarted,
      m.UpdateDeferred,
      m.UpdateSuccess,
      m.UpdateFailure,
      m.PolicyErrors,
    ].map(String),
  ]);
  const metricHead = ['DAY', 'REQUESTS', 'STARTED', 'DEFERRED', 'SUCCESS', 'FAILURE', 'POLICY ERRORS'];
  lines.push(metrics.length === 0 ? '  none' : table(metricHead, metricRows, '  '));
  lines.push('\nDevices seen per day');
  const seenRows = stats.seen.map((d) => [d.day, String(d.devices), byVersion(d.versions)]);
  lines.push(seenRows.length === 0 ? '  none' : table(['DAY', 'DEVICES', 'BY VERSION'], seenRows, '  '));
  if (showHours) lines.push(...seriesText(stats));
  return lines;
}

/** `1.1.0: 30, 1.0.0: 5`, most devices first; `-` for a day counted before versions were. */
function byVersion(versions: Readonly<Record<string, number>>): string {
  const parts = Object.entries(versions).sort(([, a], [, b]) => b - a);
  return parts.length === 0 ? '-' : parts.map(([version, n]) => `${version}: ${n}`).join(', ');
}

function seriesText(stats: ProductStats): string[] {
  const head = ['HOUR (UTC)', 'REQUESTS', 'DEFERRED', 'STARTED', 'SUCCESS', 'FAILURE'];
  const rows = (points: readonly SeriesPoint[]) =>
    points.map((p) =>
      [`${p.hour}:00`].concat(
        [p.UpdateRequests, p.UpdateDeferred, p.UpdateStarted, p.UpdateSuccess, p.UpdateFailure].map(String),
      ),
    );
  const lines = [`\nHourly, product (last ${stats.hours} hour${stats.hours === 1 ? '' : 's'})`];
  lines.push(table(head, rows(stats.series.product), '  '));
  for (const [id, points] of Object.entries(stats.series.updates)) {
    const version = stats.updates.find((u) => u.id === id)?.version;
    lines.push(`\nHourly, update ${id}${version ? ` (${version})` : ''}`);
    lines.push(table(head, rows(points), '  '));
  }
  return lines;
}

function wholeFlag(ctx: Parameters<Command['run']>[0], name: string, fallback: number): number {
  const n = numberFlag(ctx.values, name) ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`Invalid --${name} ${n}: use a whole number ≥ 1`);
  return n;
}

export const stats: Command = {
  summary: 'devices per version, update counters, hourly series, daily metrics',
  usage: `Usage: updraft stats --product P [--days N] [--hours N] [--backfill]
Devices per version and seen per day, per-update counters, hourly series and daily metrics, read
from aggregates the cloud keeps as devices check in (the answer time does not grow with the fleet).
  --days N               days of metrics and devices seen to show (default 7)
  --hours N              show the hourly series of the last N hours (JSON: always, default 24)
  --backfill             first count the devices registered by a cloud without aggregates and
                         group its failures by reason (run once after upgrading such a cloud;
                         safe to repeat or interrupt)`,
  options: {
    product: { type: 'string' },
    days: { type: 'string' },
    hours: { type: 'string' },
    backfill: { type: 'boolean' },
  },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const days = wholeFlag(ctx, 'days', 7);
    const hours = wholeFlag(ctx, 'hours', 24);
    const admin = await loadAdmin();
    const cloud = await ctx.cloud();
    if (ctx.values.backfill === true) {
      const progress = (done: number, total: number) => {
        if (process.stderr.isTTY)
          process.stderr.write(`\rBackfilling ${product}: ${done} / ${total} devices`);
      };
      const result = await admin.backfillDeviceCounts(cloud, product, progress);
      if (process.stderr.isTTY && result.devices > 0) process.stderr.write('\n');
      process.stderr.write(
        `Backfilled ${product}: counted ${result.counted} of ${result.devices} devices, grouped ${result.failures} earlier failures by reason, moved ${result.days} day counts onto day items\n`,
      );
    }
    const result = await admin.productStats(cloud, product, { days, hours });
    if (ctx.json) ctx.printJson(result);
    else for (const line of statsText(result, days, ctx.values.hours !== undefined)) ctx.print(line);
    return 0;
  },
};
