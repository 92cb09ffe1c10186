/**
 * policy-eval: compiled policies (the one engine: closures, no generated code) vs hand-written
 * JavaScript for the same five policies, reported as measured, with no target; policy-eval-filtrex:
 * the same vs filtrex, target ≥ 2x (issue 12). Each figure is the geometric mean of evaluations per
 * second over the five policies. The device
 * changes on every call (64 realistic checkin contexts, values mixing strings and numbers as real
 * clients send them), so nothing can be folded into a constant.
 */
import { compileExpression, useDotAccessOperatorAndOptionalChaining } from 'filtrex';
import semver from 'semver';
import { compilePolicy, type PolicyContext, policyContext } from '#core/policy.ts';
import { type BenchRow, type BenchSuite, rate } from './row.ts';

type Fn = (context: PolicyContext) => unknown;

interface Case {
  readonly label: string;
  readonly policy: string;
  /** What a careful developer would write by hand for the same rule, coercing strings the same way. */
  readonly hand: Fn;
  readonly filtrex: string;
}

const TWO = new semver.SemVer('2.0.0');

const CASES: readonly Case[] = [
  {
    label: 'equality',
    policy: 'product == "pro"',
    hand: (c) => c.product === 'pro',
    filtrex: 'product == "pro"',
  },
  {
    label: 'boolean+nested',
    policy: 'hw.rev >= 3 && region != "cn" || test == true',
    hand: (c) => {
      const hw = c.hw;
      const rev =
        typeof hw === 'object' && hw !== null ? Number((hw as Record<string, unknown>).rev) : Number.NaN;
      return (rev >= 3 && c.region !== 'cn') || c.test === true || c.test === 'true';
    },
    filtrex: 'num(hw.rev) >= 3 and region != "cn" or test == "true"',
  },
  {
    label: 'membership',
    policy: 'region in ["us","eu","ap"]',
    hand: (c) => {
      const r = c.region;
      return r === 'us' || r === 'eu' || r === 'ap';
    },
    filtrex: 'region in ("us", "eu", "ap")',
  },
  {
    label: 'string ops',
    policy: 'model ^= "X1" && serial $= "7" && name >< "lab"',
    hand: (c) => {
      const { model, serial, name } = c;
      return (
        typeof model === 'string' &&
        model.startsWith('X1') &&
        (typeof serial === 'string' || typeof serial === 'number') &&
        String(serial).endsWith('7') &&
        typeof name === 'string' &&
        name.includes('lab')
      );
    },
    filtrex: 'startsWith(model, "X1") and endsWith(serial, "7") and contains(name, "lab")',
  },
  {
    label: 'semver',
    policy: 'semver(version, "<", "2.0.0")',
    hand: (c) => typeof c.version === 'string' && semver.lt(c.version, TWO),
    filtrex: 'semverLt(version, "2.0.0")',
  },
];

const FILTREX_FUNCTIONS = {
  num: (v: unknown) => Number(v),
  startsWith: (s: unknown, p: string) => String(s).startsWith(p),
  endsWith: (s: unknown, p: string) => String(s).endsWith(p),
  contains: (s: unknown, p: string) => String(s).includes(p),
  semverLt: (a: string, b: string) => semver.lt(a, b),
};

/** Checkin contexts as the cloud builds them: parsed JSON, string-only clients mixed with typed ones. */
function devices(): PolicyContext[] {
  const versions = ['1.0.0', '1.2.3', '1.4.0', '2.0.0', '2.1.0-beta.1', '1.9.9'];
  const regions = ['us', 'eu', 'ap', 'cn', 'sa'];
  const models = ['X1-200', 'X2-100', 'X1-300', 'Z9'];
  const names = ['lab-3', 'field', 'bench-lab', 'prod-7'];
  const out: PolicyContext[] = [];
  for (let i = 0; i < 64; i++) {
    const stringsOnly = i % 3 === 0; // like the C updater, which sends every value as a string
    const rev = i % 6;
    const body: Record<string, unknown> = {
      id: `dev-${String(i).padStart(5, '0')}`,
      product: i % 4 === 0 ? 'lite' : 'pro',
      hw: { rev: stringsOnly ? String(rev) : rev, vendor: 'acme' },
      region: regions[i % regions.length],
      test: stringsOnly ? String(i % 7 === 0) : i % 7 === 0,
      model: models[i % models.length],
      serial: stringsOnly ? `${100_000 + i * 7}` : 100_000 + i * 7,
      name: names[(i >> 1) % names.length],
      ram: stringsOnly ? '256' : 512,
    };
    if (i % 5 === 0) delete body.test; // optional properties: not every device sends every key
    const json = JSON.parse(JSON.stringify(body));
    out.push(policyContext(json, versions[i % versions.length]!, '2.0.0'));
  }
  return out;
}

function measure(fn: Fn, contexts: PolicyContext[], ms: number): number {
  let i = 0;
  let matches = 0;
  const perSecond = rate(() => {
    if (fn(contexts[i++ & 63]!) === true) matches++;
  }, ms);
  if (matches < 0) throw new Error('unreachable: keeps the results alive');
  return perSecond;
}

function geometricMean(values: number[]): number {
  return Math.exp(values.reduce((s, v) => s + Math.log(v), 0) / values.length);
}

export const suite: BenchSuite = async () => {
  const contexts = devices();
  const ms = 400;
  const ours: number[] = [];
  const hand: number[] = [];
  const filtrex: number[] = [];
  for (const c of CASES) {
    const policy = compilePolicy(c.policy);
    const filter = compileExpression(c.filtrex, {
      extraFunctions: FILTREX_FUNCTIONS,
      customProp: useDotAccessOperatorAndOptionalChaining,
    });
    // Same answers first: a benchmark of wrong code measures nothing.
    for (const ctx of contexts) {
      const expected = c.hand(ctx);
      if (policy.evaluate(ctx) !== expected) {
        throw new Error(
          `policy ${c.policy} disagrees with the hand-written function on ${JSON.stringify(ctx)}`,
        );
      }
      const f = filter(ctx);
      if (f instanceof Error)
        throw new Error(`filtrex ${c.filtrex} failed on ${JSON.stringify(ctx)}: ${f.message}`);
    }
    // Warm all three before timing, then interleave so drift affects them alike.
    measure((ctx) => policy.evaluate(ctx), contexts, 50);
    measure(c.hand, contexts, 50);
    measure(filter, contexts, 50);
    ours.push(measure((ctx) => policy.evaluate(ctx), contexts, ms));
    hand.push(measure(c.hand, contexts, ms));
    filtrex.push(measure(filter, contexts, ms));
  }
  // The semver baseline re-parses the device version on every call, as semver.lt does; the other four
  // show the engine itself, so their geometric mean is reported apart.
  const detail = (baseline: number[]) => {
    const ratios = CASES.map((_, k) => ours[k]! / baseline[k]!);
    const perPolicy = CASES.map((c, k) => `${c.label} ${ratios[k]!.toFixed(2)}x`).join(', ');
    return `${perPolicy}; without semver ${geometricMean(ratios.slice(0, 4)).toFixed(2)}x`;
  };
  const rows: BenchRow[] = [
    {
      name: 'policy-eval',
      value: geometricMean(ours),
      unit: 'evals/s',
      baseline: 'hand-written JS functions (semver: semver.lt with the literal pre-parsed)',
      baselineValue: geometricMean(hand),
      better: 'higher',
      detail: detail(hand),
    },
    {
      name: 'policy-eval-filtrex',
      value: geometricMean(ours),
      unit: 'evals/s',
      baseline:
        'filtrex 3 on equivalent expressions (custom functions for string ops and semver; target ≥ 2x)',
      baselineValue: geometricMean(filtrex),
      better: 'higher',
      detail: detail(filtrex),
    },
  ];
  return rows;
};
