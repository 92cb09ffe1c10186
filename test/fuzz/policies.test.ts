/**
 * Fuzzing the policy language (issue 7): ≥ 10,000 generated policy strings. Each one is either
 * refused with a PolicyError or compiles to a policy whose evaluation returns true/false/null,
 * never throws, and stays within a set time on devices with 1 KiB strings (a catastrophic
 * regex would take seconds or minutes; the bound is a safety property, not a speed target).
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { parseCheckin } from '#core/device.ts';
import { PolicyError } from '#core/errors.ts';
import { compilePolicy } from '#core/policy.ts';
import { deviceContext } from '#core/version.ts';

/** Per evaluation, generous for a loaded 2-core machine; backtracking blow-ups exceed it by orders. */
const MAX_EVAL_MS = 250;

const names = [
  'id',
  'region',
  'hw.rev',
  'hw.b.c',
  'memory',
  'serial',
  'try-beta',
  'version',
  'newVersion',
  'missing',
  'toString',
];
const literals = [
  '1',
  '-2.5',
  '256',
  '"256"',
  "'eu'",
  '"a"',
  '""',
  'true',
  'false',
  'null',
  '"1.2.3"',
  `"${'a'.repeat(40)}"`,
];
const operators = [
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  '^=',
  '^!=',
  '$=',
  '$!=',
  '><',
  '<>',
  '=~',
  '!~',
  '&&',
  '||',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '?',
  ':',
  'in',
];
const regexes = [
  '/(a+)+$/',
  '/^(a|aa)+$/',
  '/(x+x+)+y/',
  '/(.*a){12}/',
  '/^[a-z]+\\d*$/i',
  '/a{1,100}b/',
  '/(?:a|b)*c/s',
  '/\\1/',
  '/(?=a)/',
  '/[/',
];
const calls = [
  'semver(version, "<", "2.0.0")',
  'satisfies(version, "^1.0 || 2.x")',
  'semver(hw.rev, "==", 3)',
  'eval(1)',
  'constructor("x")',
  'semver(1)',
];
const token = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...names) },
  { weight: 3, arbitrary: fc.constantFrom(...literals) },
  { weight: 4, arbitrary: fc.constantFrom(...operators) },
  { weight: 1, arbitrary: fc.constantFrom(...regexes) },
  { weight: 1, arbitrary: fc.constantFrom(...calls) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('(', ')', '[', ']', ',', '!', '.', '__proto__', 'this', 'new', '=', '`x`'),
  },
);
const soup = fc.array(token, { minLength: 1, maxLength: 30 }).map((t) => t.join(' '));
const wellFormed = fc
  .tuple(
    fc.constantFrom(...names),
    fc.constantFrom(...operators.slice(0, 14)),
    fc.oneof(fc.constantFrom(...literals), fc.constantFrom(...regexes)),
  )
  .chain(([a, op, b]) =>
    fc
      .array(
        fc.tuple(
          fc.constantFrom('&&', '||'),
          fc.constantFrom(...names),
          fc.constantFrom('==', '>=', '><', '=~'),
          fc.oneof(fc.constantFrom(...literals), fc.constantFrom(...regexes)),
        ),
        { maxLength: 6 },
      )
      .map((rest) => [`${a} ${op} ${b}`, ...rest.map(([j, n, o, v]) => `${j} ${n} ${o} ${v}`)].join(' ')),
  );
const source = fc.oneof(
  soup,
  wellFormed,
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

const long = `${'a'.repeat(1023)}!`;
const devices = [
  {
    id: 'd1',
    product: 'p',
    version: '1.2.3',
    region: 'eu',
    serial: long,
    memory: '512',
    hw: { rev: '3', b: { c: long } },
  },
  { id: 'd2', product: 'p', version: '2.0.0-rc.1', region: long, 'try-beta': 1, memory: 128, hw: { rev: 2 } },
].map((body) => {
  const ctx = deviceContext(parseCheckin(new TextEncoder().encode(JSON.stringify(body))));
  ctx.newVersion = '2.1.0';
  return ctx;
});

it('10,000 generated policies: a PolicyError, or an evaluation that never throws and stays bounded', () => {
  let compiled = 0;
  let slowest = 0;
  fc.assert(
    fc.property(source, (text) => {
      let policy: ReturnType<typeof compilePolicy>;
      try {
        policy = compilePolicy(text);
      } catch (err) {
        expect(err).toBeInstanceOf(PolicyError);
        expect((err as PolicyError).column).toBeGreaterThanOrEqual(1);
        return;
      }
      compiled++;
      for (const ctx of devices) {
        const start = performance.now();
        const result = policy.evaluate(ctx);
        slowest = Math.max(slowest, performance.now() - start);
        expect([true, false, null]).toContain(result);
      }
    }),
    { numRuns: 10_000 },
  );
  // The generator reaches both outcomes in quantity, not only parse errors.
  expect(compiled).toBeGreaterThan(1000);
  expect(slowest).toBeLessThan(MAX_EVAL_MS);
}, 120_000);
