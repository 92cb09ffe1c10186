/**
 * policy-regex-worst: the slowest accepted pattern of a hostile corpus against a 1 KiB device string,
 * per evaluation, vs `=~ /xyz/` on the same strings (DESIGN §9; budget ≤ 1 ms).
 * policy-regex-policy-worst: the slowest accepted whole policy built from that corpus (see
 * {@link hostilePolicies}), per evaluation, vs one `=~ /xyz/` policy: the budget holds per policy too.
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
import { PolicyError } from '#core/errors.ts';
import { policyContext } from '#core/policy.ts';
import { interpretPolicy } from '#core/policy-interpret.ts';
import { parsePolicy } from '#core/policy-parse.ts';
import { compileSafeRegex, RegexRejection, regexCost } from '#core/policy-regex.ts';
import type { PolicyContext } from '#core/policy-values.ts';
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
  const { row, timed } = worstPattern(inputs);
  return [row, worstPolicy(inputs, timed)];
};

function worstPattern(inputs: string[]): { row: BenchRow; timed: Timed[] } {
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
  return { row, timed };
}

// ---------------------------------------------------------------- whole policies

/** A regex placed in a policy: on the property holding its slowest string, written to be false or true. */
interface Placed {
  readonly source: string;
  readonly flags: string;
  readonly property: string;
  readonly matches: boolean;
}

const MAX_REGEXES = 25;

function placed(t: Timed, inputs: string[]): Placed {
  const times = inputs.map((input) => coldMicros(t.source, t.flags, input));
  const slowest = times.indexOf(Math.max(...times));
  const matches = compileSafeRegex(t.source, t.flags).test(inputs[slowest]!);
  return { source: t.source, flags: t.flags, property: `s${slowest}`, matches };
}

/**
 * `(f1 || f2 || …) || (t1 && t2 && …)` with every f false and every t true, so that all regexes run:
 * a regex that matches its string is written `!~` among the f's and `=~` among the t's.
 */
function policySource(regexes: readonly Placed[]): string {
  const term = (r: Placed, truth: boolean) =>
    `${r.property} ${r.matches === truth ? '=~' : '!~'} /${r.source}/${r.flags}`;
  const half = Math.floor(regexes.length / 2);
  const falses = regexes.slice(0, half).map((r) => term(r, false));
  const trues = regexes.slice(half).map((r) => term(r, true));
  return falses.length === 0 ? trues.join(' && ') : `(${falses.join(' || ')}) || (${trues.join(' && ')})`;
}

function accepted(source: string): boolean {
  try {
    parsePolicy(source);
    return true;
  } catch (e) {
    if (e instanceof PolicyError) return false;
    throw e;
  }
}

/** `first`, then as many copies of `filler` as the policy accepts (length, terms, regex cost). */
function packed(first: Placed, filler: Placed): Placed[] {
  const regexes = [first];
  while (regexes.length < MAX_REGEXES && accepted(policySource([...regexes, filler]))) regexes.push(filler);
  return regexes;
}

/**
 * The hostile policies: the slowest patterns and the slowest per step of cost (cheap-looking ones that
 * still take time, and plain literals), each repeated as far as the policy accepts, and each slow one
 * followed by as many copies of each cheap one as fit. Copies share a property; mixes read several.
 */
function hostilePolicies(inputs: string[], timed: readonly Timed[]): string[] {
  const cost = (t: Timed) => regexCost(compileSafeRegex(t.source, t.flags));
  const slowest = timed.slice(0, 6).map((t) => placed(t, inputs));
  const perStep = [...timed]
    .sort((a, b) => b.us / cost(b) - a.us / cost(a))
    .slice(0, 6)
    .map((t) => placed(t, inputs));
  const sources = new Set<string>();
  for (const first of [...slowest, ...perStep]) {
    for (const filler of [first, ...perStep]) {
      const regexes = packed(first, filler);
      if (accepted(policySource(regexes))) sources.add(policySource(regexes));
    }
  }
  return [...sources];
}

function deviceContext(inputs: string[]): PolicyContext {
  const body = Object.fromEntries(inputs.map((input, k) => [`s${k}`, input]));
  return policyContext({ id: 'd1', product: 'p', version: '1.0.0', ...body }, '1.0.0', '1.1.0');
}

/** One evaluation of a freshly compiled policy (every regex's DFA empty), median of {@link RUNS}. */
function policyColdMicros(source: string, context: PolicyContext): number {
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const evaluate = interpretPolicy(parsePolicy(source).root);
    const start = performance.now();
    const result = evaluate(context);
    times.push((performance.now() - start) * 1000);
    if (result !== true) throw new Error(`hostile policy did not run all its regexes: ${source}`);
  }
  return times.sort((a, b) => a - b)[RUNS >> 1]!;
}

function literalPolicyMicros(context: PolicyContext): number {
  const evaluate = interpretPolicy(parsePolicy('s0 =~ /xyz/').root);
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < 300) {
    evaluate(context);
    calls++;
  }
  return ((performance.now() - start) * 1000) / calls;
}

function worstPolicy(inputs: string[], timed: readonly Timed[]): BenchRow {
  const context = deviceContext(inputs);
  const policies = hostilePolicies(inputs, timed);
  const once = policies
    .map((source) => ({ source, us: policyColdMicros(source, context) }))
    .sort((a, b) => b.us - a.us);
  const retimed = once
    .slice(0, 5)
    .map((p) => ({ ...p, us: Math.min(p.us, ...[1, 2, 3].map(() => policyColdMicros(p.source, context))) }))
    .sort((a, b) => b.us - a.us);
  const worst = retimed[0]!;
  const regexCount = (worst.source.match(/[=!]~/g) ?? []).length;
  return {
    name: 'policy-regex-policy-worst',
    value: worst.us,
    unit: 'µs',
    baseline: 's0 =~ /xyz/ on the same 1 KiB strings',
    baselineValue: literalPolicyMicros(context),
    better: 'lower',
    detail:
      `slowest of ${policies.length} accepted hostile policies: ${regexCount} regexes, ` +
      `${worst.source.length} characters, budget ${BUDGET_US} µs ${worst.us <= BUDGET_US ? 'met' : 'EXCEEDED'}: ` +
      `${worst.source.slice(0, 160)}${worst.source.length > 160 ? '…' : ''}`,
  };
}
