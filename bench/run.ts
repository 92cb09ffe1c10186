/**
 * `npm run bench` — every figure beside its baseline measured in the same run (DESIGN §9).
 * `npm run bench -- --json` prints one JSON array; `--only NAME[,NAME]` runs the suites named.
 *
 * Each suite runs in a fresh node process of its own, so that none measures in a heap, a JIT state
 * or a page cache the previous ones left behind (the agent suite's s3rver, for one, served ~20%
 * slower in a process that had just run the checkin suite).
 */
// First: the suites' processes inherit the SDK warning setting (see the module).
import '#scripts/sdk-env.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BenchRow, type BenchSuite, unmeasured } from './row.ts';

/** Suite name → module exporting `suite: BenchSuite`. Each suite measures one area. */
const suites: Record<string, () => Promise<{ suite: BenchSuite }>> = {
  policy: () => import('./policy.ts'),
  regex: () => import('./regex.ts'),
  presign: () => import('./presign.ts'),
  checkin: () => import('./checkin.ts'),
  bundle: () => import('./bundle.ts'),
  agent: () => import('./agent.ts'),
  console: () => import('./console.ts'),
  fleet: () => import('./fleet.ts'),
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

/** Runs one suite in a child process (this file with `--suite NAME`, same node flags) and reads its rows. */
function runSuite(name: string): Promise<BenchRow[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--suite', name],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const rows = code === 0 ? lastJsonLine(out) : undefined;
      resolve(
        Array.isArray(rows)
          ? (rows as BenchRow[])
          : [unmeasured(name, '-', '-', 'higher', `suite ${name} exited with ${signal ?? code}`)],
      );
    });
  });
}

function lastJsonLine(text: string): unknown {
  try {
    return JSON.parse(text.trim().split('\n').at(-1) ?? '');
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const suiteAt = args.indexOf('--suite');
  if (suiteAt >= 0) {
    const load = suites[args[suiteAt + 1] ?? ''];
    if (!load) throw new Error(`Unknown bench suite "${args[suiteAt + 1]}"`);
    const { suite } = await load();
    process.stdout.write(`${JSON.stringify(await suite())}\n`);
    return;
  }
  const json = args.includes('--json');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : undefined;
  if (only) {
    const unknown = [...only].filter((name) => !(name in suites));
    if (unknown.length > 0) {
      throw new Error(`Unknown bench suite ${unknown.join(', ')}: use ${Object.keys(suites).join(', ')}`);
    }
  }
  const rows: BenchRow[] = [];
  for (const name of Object.keys(suites)) {
    if (only && !only.has(name)) continue;
    if (!json) process.stderr.write(`bench: ${name}…\n`);
    rows.push(...(await runSuite(name)));
  }
  if (json) console.log(JSON.stringify(rows));
  else printTable(rows);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 2;
}
