/** `updraft stats`: devices per version, per-update counters and daily metrics of a product. */
import type { ProductStats } from '#admin/index.ts';
import { type Command, loadAdmin, required } from '../command.ts';
import { UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';
import { statusOf, table } from '../format.ts';

function statsText(stats: ProductStats, days: number): string[] {
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
  return lines;
}

export const stats: Command = {
  summary: 'devices per version, update counters, daily metrics',
  usage: `Usage: updraft stats --product P [--days N]
Devices per version (from the registry), per-update counters, and daily metrics.
  --days N               days of metrics to show (default 7)`,
  options: { product: { type: 'string' }, days: { type: 'string' } },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const days = numberFlag(ctx.values, 'days') ?? 7;
    if (!Number.isSafeInteger(days) || days < 1)
      throw new UsageError(`Invalid --days ${days}: use a whole number ≥ 1`);
    const { productStats } = await loadAdmin();
    const result = await productStats(await ctx.cloud(), product, days);
    if (ctx.json) ctx.printJson(result);
    else for (const line of statsText(result, days)) ctx.print(line);
    return 0;
  },
};
