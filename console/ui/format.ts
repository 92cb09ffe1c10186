/** How numbers and records read on the page. */
import type { UpdateRecord, UpdateView } from '../api-types.ts';

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function status(update: UpdateRecord): string {
  if (update.paused) return update.pauseReason ? `Paused: ${update.pauseReason}` : 'Paused';
  return update.enabled ? 'Enabled' : 'Disabled';
}

export function limits(update: UpdateRecord): string {
  const parts: string[] = [];
  if (update.percentage !== undefined) parts.push(`${update.percentage}% of devices`);
  if (update.limit !== undefined) parts.push(`at most ${update.limit} devices`);
  if (update.rate !== undefined && update.period !== undefined)
    parts.push(`${update.rate} per ${update.period} s`);
  if (update.abortThreshold !== undefined && update.abortMin !== undefined)
    parts.push(`pause at ${update.abortThreshold}% failures after ${update.abortMin} reports`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

export const policyText = (update: UpdateRecord) => update.policy || '(default: newer than the device)';

/** Where a phased update stands: "phase 1 of 3 (1%), waiting on gate"; undefined without phases. */
export function phaseText(update: UpdateView): string | undefined {
  const status = update.phaseStatus;
  if (!status || update.phases === undefined) return undefined;
  const next = status.nextAt === undefined ? undefined : new Date(status.nextAt).toLocaleString();
  if (status.index < 0) return `not started (begins ${next})`;
  const where = `phase ${status.index + 1} of ${update.phases.split(',').length} (${status.percentage}%)`;
  if (status.waitingOnGate) return `${where}, waiting on gate`;
  return next === undefined ? where : `${where}, next at ${next}`;
}
