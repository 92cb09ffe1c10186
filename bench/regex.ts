/**
 * policy-regex-worst: the slowest accepted pattern of a hostile corpus against a 1 KiB device string,
 * per evaluation, vs `=~ /xyz/` on the same strings (DESIGN §9; budget ≤ 1 ms).
 *
 * Corpus: test/support/hostile-regex.ts (the issue's patterns, families swept across the cost limit,
 * 2,000 generated nested/overlapping quantifier patterns). Refused patterns are counted, not timed.
 * Each accepted pattern is timed on a freshly compiled regex, the first evaluation on each string,
 * so RE2's lazy DFA starts empty as it does for an attacker who keeps sending new strings; the figure
 * for a (pattern, string) pair is the median of 5 such runs, a pattern's is its slowest string, and
 * the row is the slowest pattern. The 20 slowest are re-timed three more times, keeping the lowest, to
 * drop preemptions on this shared 2-core machine (a slow pattern is slow every time).
 */
import fc from 'fast-check';
import { compileSafeRegex, RegexRejection } from '#core/policy-regex.ts';
import { familyPatterns, hostileFlags, hostilePattern, hostileStrings } from '#test/support/hostile-regex.ts';
import type { BenchRow, BenchSuite } from './row.ts';

const BUDGET_US = 1000;
const RUNS = 5;

interface Timed {
  readonly source: string;
  readonly flags: string;
  readonly us: number;
}

function coldMicros(source: string, flags: string, input: string): number {
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const regex = compileSafeRegex(source, flags);
    const start = performance.now();
    regex.test(input);
    times.push((performance.now() - start) * 1000);
  }
  return times.sort((a, b) => a - b)[RUNS >> 1]!;
}

function slowestString(source: string, flags: string, inputs: string[]): number {
  return Math.max(...inputs.map((input) => coldMicros(source, flags, input)));
}

function corpus(): { source: string; flags: string }[] {
  const generated = fc.sample(fc.tuple(hostilePattern, hostileFlags), { numRuns: 2000, seed: 11 });
  return [...familyPatterns(), ...generated.map(([source, flags]) => ({ source, flags }))];
}

function warmUp(inputs: string[]): void {
  for (let i = 0; i < 20; i++) {
    for (const source of ['[ab]*a[ab]{12}$', '(?:a|b|ab|ba){1,6}!', '\\w{1,24}!', 'xyz']) {
      for (const input of inputs) compileSafeRegex(source, i % 2 ? 'i' : '').test(input);
    }
  }
}

function literalMicros(inputs: string[]): number {
  const regex = compileSafeRegex('xyz', '');
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < 300) {
    for (const input of inputs) regex.test(input);
    calls += inputs.length;
  }
  return ((performance.now() - start) * 1000) / calls;
}

export const suite: BenchSuite = async () => {
  const inputs = hostileStrings();
  warmUp(inputs);
  const timed: Timed[] = [];
  let refused = 0;
  for (const { source, flags } of corpus()) {
    try {
      compileSafeRegex(source, flags);
    } catch (e) {
      if (!(e instanceof RegexRejection)) throw e;
      refused++;
      continue;
    }
    timed.push({ source, flags, us: slowestString(source, flags, inputs) });
  }
  timed.sort((a, b) => b.us - a.us);
  const retimed = timed
    .slice(0, 20)
    .map((t) => {
      const again = [1, 2, 3].map(() => slowestString(t.source, t.flags, inputs));
      return { ...t, us: Math.min(t.us, ...again) };
    })
    .sort((a, b) => b.us - a.us);
  const worst = retimed[0]!;
  const row: BenchRow = {
    name: 'policy-regex-worst',
    value: worst.us,
    unit: 'µs',
    baseline: '=~ /xyz/ on the same 1 KiB strings',
    baselineValue: literalMicros(inputs),
    better: 'lower',
    detail:
      `slowest /${worst.source}/${worst.flags}; budget ${BUDGET_US} µs ${worst.us <= BUDGET_US ? 'met' : 'EXCEEDED'}; ` +
      `${timed.length} accepted, ${refused} refused; next: ` +
      retimed
        .slice(1, 4)
        .map((t) => `/${t.source}/${t.flags} ${Math.round(t.us)} µs`)
        .join(', '),
  };
  return [row];
};
