/** One figure of `npm run bench`, in the row format of DESIGN §9. */
export interface BenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** What the figure is compared with, measured in the same run. */
  readonly baseline: string;
  readonly baselineValue: number;
  readonly better: 'higher' | 'lower';
  /** Set when the row could not be measured; value/baselineValue are then NaN. */
  readonly error?: string;
  /** Free-form detail shown in the table (e.g. per-policy figures). */
  readonly detail?: string;
}

/** A benchmark module: measures its rows; must clean up after itself. */
export type BenchSuite = () => Promise<BenchRow[]>;

export function unmeasured(
  name: string,
  unit: string,
  baseline: string,
  better: 'higher' | 'lower',
  error: string,
): BenchRow {
  return { name, value: Number.NaN, unit, baseline, baselineValue: Number.NaN, better, error };
}

/** Runs `fn` repeatedly for about `ms` milliseconds and returns calls per second. */
export function rate(fn: () => unknown, ms = 500): number {
  let calls = 0;
  const batch = 1000;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) fn();
    calls += batch;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (calls / elapsed) * 1000;
}
