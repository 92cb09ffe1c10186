/**
 * `npm run bench` — every figure beside its baseline measured in the same run (DESIGN §9).
 * `npm run bench -- --json` prints one JSON array; `--only NAME[,NAME]` runs the suites named.
 */
import type { BenchRow, BenchSuite } from './row.ts';

/** Suite name → module exporting `suite: BenchSuite`. Each suite measures one area. */
const suites: Record<string, () => Promise<{ suite: BenchSuite }>> = {
  policy: () => import('./policy.ts'),
  presign: () => import('./presign.ts'),
  checkin: () => import('./checkin.ts'),
  bundle: () => import('./bundle.ts'),
  agent: () => import('./agent.ts'),
};

function ratio(row: BenchRow): number {
  return row.better === 'higher' ? row.value / row.baselineValue : row.baselineValue / row.value;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3);
}

function printTable(rows: BenchRow[]): void {
  const lines = rows.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    `${fmt(r.baselineValue)} ${r.unit}`,
    r.error ? '-' : `${ratio(r).toFixed(2)}x`,
    r.error ? `error: ${r.error}` : `vs ${r.baseline}${r.detail ? ` (${r.detail})` : ''}`,
  ]);
  const head = ['name', 'value', 'baseline', 'ratio', 'baseline is'];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
  console.log('ratio: > 1.00x means better than the baseline (higher rate, or lower time/size/memory).');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : undefined;
  const rows: BenchRow[] = [];
  for (const [name, load] of Object.entries(suites)) {
    if (only && !only.has(name)) continue;
    if (!json) process.stderr.write(`bench: ${name}…\n`);
    const { suite } = await load();
    rows.push(...(await suite()));
  }
  if (json) console.log(JSON.stringify(rows));
  else printTable(rows);
}

await main();
