/** How the CLI shows things on a terminal: tables, update summaries, an upload meter. */
import type { UpdateRecord } from '#admin/index.ts';
import { phaseStatusOf } from '#core/phases.ts';

/** Left-aligned columns separated by two spaces. */
export function table(head: readonly string[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** A value as one POSIX shell word, for commands printed to be pasted back (single quotes). */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_.:/=-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

export function cut(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function statusOf(u: Pick<UpdateRecord, 'enabled' | 'paused'>): string {
  if (u.paused) return 'paused';
  return u.enabled ? 'enabled' : 'disabled';
}

export function limitsOf(u: UpdateRecord): string {
  const parts: string[] = [];
  if (u.percentage !== undefined) parts.push(`${u.percentage}%`);
  if (u.phases !== undefined) parts.push(`phases ${u.phases}`);
  if (u.limit !== undefined) parts.push(`max ${u.limit}`);
  if (u.rate !== undefined && u.period !== undefined) parts.push(`${u.rate}/${u.period}s`);
  if (u.abortThreshold !== undefined && u.abortMin !== undefined) {
    parts.push(`abort ${u.abortThreshold}% of ≥${u.abortMin}`);
  }
  return parts.length ? parts.join(', ') : '-';
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Where a phased update stands now: "phase 2 of 3 (10%), waiting on gate", "-" without phases. */
export function phaseOf(u: UpdateRecord, now = Date.now()): string {
  const status = phaseStatusOf(u, now);
  if (!status || u.phases === undefined) return '-';
  const count = u.phases.split(',').length;
  if (status.index < 0) return `not started (begins ${new Date(status.nextAt ?? 0).toISOString()})`;
  const where = `phase ${status.index + 1} of ${count} (${status.percentage}%)`;
  if (status.waitingOnGate) return `${where}, waiting on gate`;
  return status.nextAt === undefined ? where : `${where}, next at ${new Date(status.nextAt).toISOString()}`;
}

/** An update in full, one `Name: value` line per field. */
export function describeUpdate(u: UpdateRecord): string {
  const rows: [string, string][] = [
    ['Product', u.product],
    ['Version', u.version],
    ['Update id', u.id],
    ['Status', u.paused ? `paused (${u.pauseReason ?? 'no reason given'})` : statusOf(u)],
    ['Policy', u.policy === '' ? '(default) semver(version, "<", newVersion)' : u.policy],
    ['Description', u.description || '-'],
    ['Percentage', u.percentage === undefined ? '-' : `${u.percentage}%`],
    ['Phases', u.phases === undefined ? '-' : `${u.phases} from ${u.startAt ?? u.created}`],
    ['Gate', u.gate ?? '-'],
    ['Phase', phaseOf(u)],
    ['Limit', u.limit === undefined ? '-' : `${u.limit} devices`],
    ['Rate', u.rate === undefined ? '-' : `${u.rate} per ${u.period} s`],
    [
      'Auto-abort',
      u.abortThreshold === undefined ? '-' : `${u.abortThreshold}% failures of ≥ ${u.abortMin} reports`,
    ],
    ['Downgrade', u.allowDowngrade ? 'allowed' : 'no'],
    ['Image', u.key],
    ['Size', `${u.size} bytes (${mib(u.size)})`],
    ['SHA-256', u.checksum],
    ['Signature', u.signature ?? '-'],
    ['Created', u.created],
    ['Started', String(u.counters.started)],
    ['Success', String(u.counters.success)],
    ['Failure', String(u.counters.failure)],
    ['Deferred', String(u.counters.deferred)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n');
}

/** A one-line progress meter on a terminal; nothing when stderr is not one. */
export function progressMeter(label: string): {
  update: (sent: number, total: number) => void;
  done: () => void;
} {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let shown = -1;
  return {
    update(sent, total) {
      const pct = total > 0 ? Math.floor((sent / total) * 100) : 100;
      if (pct === shown) return;
      shown = pct;
      process.stderr.write(`\r${label}  ${mib(sent)} / ${mib(total)}  ${String(pct).padStart(3)}%`);
    },
    done() {
      if (shown >= 0) process.stderr.write('\r\x1b[2K');
    },
  };
}
