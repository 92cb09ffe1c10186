/**
 * Hostile policies and hostile devices: every policy is either refused at parse time with a
 * PolicyError, or compiles to an evaluation that returns true/false/null and touches nothing outside
 * the device context.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from '#core/errors.ts';
import { compilePolicy, type PolicyContext, safeObject } from '#core/policy.ts';
import { interpretPolicy } from '#core/policy-interpret.ts';
import { parsePolicy } from '#core/policy-parse.ts';

const KIB = 1024;
/** A device string of 1 KiB that sends backtracking regex engines into exponential time. */
const evil = `${'a'.repeat(KIB - 1)}!`;

/** The same hostile device as a plain object and as a safeObject copy (read without hasOwn checks). */
function hostileDevices(): PolicyContext[] {
  const fields: PolicyContext = {
    id: 'dev-1',
    version: '1.0.0',
    newVersion: '2.0.0',
    x: evil,
    words: `${'word '.repeat(204)}!`,
    xs: `${'x'.repeat(KIB - 1)}`,
    digits: '1'.repeat(KIB),
    a: { b: { c: 1 } },
    toString: 'shadowed',
  };
  return [{ ...fields }, safeObject(fields)].map((device) =>
    Object.defineProperty(device, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter ran');
      },
    }),
  );
}

type Expectation = 'rejected' | 'evaluates';
const corpus: readonly (readonly [source: string, expectation: Expectation, reason?: RegExp])[] = [
  // prototype walks and JavaScript internals
  ['constructor', 'rejected', /Access to "constructor"/],
  ['__proto__', 'rejected', /Access to "__proto__"/],
  ['prototype == 1', 'rejected', /Access to "prototype"/],
  ['a.constructor', 'rejected', /Access to "constructor"/],
  ['a.__proto__.polluted == 1', 'rejected', /Access to "__proto__"/],
  ['a.b.prototype', 'rejected', /Access to "prototype"/],
  ['constructor.constructor("return process")()', 'rejected', /Access to "constructor"/],
  ['toString()', 'rejected', /Unknown function "toString"/],
  ['valueOf.call(1)', 'rejected', /Unknown function "valueOf.call"/],
  ['hasOwnProperty("x")', 'rejected', /Unknown function "hasOwnProperty"/],
  ['toString == "shadowed"', 'evaluates'],
  ['valueOf == null && hasOwnProperty == null && __defineGetter__ == null', 'evaluates'],
  ['a.b.toString == null', 'evaluates'],
  ['globalThis.process == null && process == null && window == null', 'evaluates'],
  // computed members
  ['a["constructor"]', 'rejected', /Computed member access/],
  ["a['__proto__']", 'rejected', /Computed member access/],
  ['a[0]', 'rejected', /Computed member access/],
  ['(a)["b"]', 'rejected', /Computed member access/],
  ['"abc"[0] == "a"', 'rejected', /Computed member access/],
  ['"abc".length == 3', 'rejected', /Member access is only allowed on properties/],
  ['/x/.source == "x"', 'rejected', /Member access is only allowed on properties/],
  ['a?.b', 'rejected', /Optional chaining/],
  // this, new, calls
  ['this', 'rejected', /"this" is not allowed/],
  ['this.constructor', 'rejected', /"this" is not allowed/],
  ['new Function("return 1")', 'rejected', /"new" is not allowed/],
  ['new Date()', 'rejected', /"new" is not allowed/],
  ['eval("1")', 'rejected', /Unknown function "eval"/],
  ['Function("return this")()', 'rejected', /Unknown function "Function"/],
  ['require("fs")', 'rejected', /Unknown function "require"/],
  ['import("fs")', 'rejected', /Unknown function "import"/],
  ['process.exit(1)', 'rejected', /Unknown function "process.exit"/],
  ['(function(){ return 1 })()', 'rejected'],
  ['() => 1', 'rejected'],
  ['semver(version, "<", newVersion)(1)', 'rejected', /Unknown function/],
  ['satisfies(version, "1.x || " + x)', 'rejected', /must be a string literal/],
  // assignment and other statements
  ['a = 1', 'rejected', /Assignment is not allowed/],
  ['a.b = 1', 'rejected', /Assignment is not allowed/],
  ['a += 1', 'rejected'],
  ['a++', 'rejected'],
  ['a; b', 'rejected', /one expression/],
  ['a, b', 'rejected', /one expression/],
  ['(a, b)', 'rejected', /Comma expressions/],
  ['typeof a', 'rejected'],
  ['void 0', 'rejected'],
  ['a instanceof b', 'rejected'],
  ['a ?? b', 'rejected'],
  ['a | b', 'rejected'],
  ['a === b', 'rejected', /There is no === operator/],
  ['{ a: 1 }', 'rejected', /Object literals/],
  ['[1, 2]', 'rejected', /Array literals/],
  ['\\u0063onstructor', 'rejected'],
  // template literals
  [`\`\${process.exit()}\``, 'rejected', /Template literals/],
  ['a == `x`', 'rejected', /Template literals/],
  // code-looking string literals are only data
  ['x == "\\"); process.exit(1); (\\""', 'evaluates'],
  ["x != '\\'; throw 1; //'", 'evaluates'],
  ['x ^= "\u2028\u2029</script>"', 'evaluates'],
  ['"__proto__" == "constructor"', 'evaluates'],
  ['constructor-x == 1 && x-constructor == null', 'evaluates'],
  // regex: huge, unsupported or catastrophic on 1 KiB device strings
  [`x =~ /${'a'.repeat(201)}/`, 'rejected', /Regex longer than 200/],
  ['x =~ /(a{1000}){1000}/', 'rejected', /too complex/],
  ['x =~ /(a)\\1/', 'rejected', /Backreferences/],
  ['x =~ /(?=a)a/', 'rejected', /Lookaround/],
  ['x =~ /(?<!a)b/', 'rejected', /Lookaround/],
  ['x =~ /a/g', 'rejected', /flag "g"/],
  ['x =~ /a/u', 'rejected', /flag "u"/],
  ['x =~ /[a/', 'rejected'],
  ['x =~ /(a+)+$/', 'evaluates'],
  ['x =~ /(a|aa)+$/', 'evaluates'],
  ['x =~ /(a|a)*$/', 'evaluates'],
  ['x =~ /(.*a){20}$/', 'evaluates'],
  ['x =~ /^(a+)+b/', 'evaluates'],
  ['words =~ /^(\\w+\\s?)*$/', 'evaluates'],
  ['xs =~ /(x+x+)+y/', 'evaluates'],
  ['x =~ /a*a*a*a*a*a*a*a*b/', 'evaluates'],
  ['digits =~ /^(\\d+)*[a-z]$/', 'evaluates'],
  ['x =~ /(a*)*b/i', 'evaluates'],
  ['x !~ /((a+)+)+c/', 'evaluates'],
  ['x =~ "(a+)+$"', 'evaluates'],
  // size and nesting
  [`${'('.repeat(1000)}x${')'.repeat(1000)}`, 'rejected', /longer than 1000/],
  [`${'('.repeat(400)}x${')'.repeat(400)}`, 'rejected', /Nesting deeper than 32/],
  [`${'!'.repeat(900)}x`, 'rejected', /Nesting deeper than 32/],
  [`${'-('.repeat(300)}1${')'.repeat(300)}`, 'rejected', /Nesting deeper than 32/],
  [`${'x ? '.repeat(200)}1${' : 0'.repeat(200)}`, 'rejected'],
  [`${'x+'.repeat(60)}1`, 'rejected', /More than 50 terms/],
  ['x'.repeat(10_000), 'rejected', /longer than 1000/],
  [`x in [${'1,'.repeat(60)}1]`, 'rejected', /More than 50 terms/],
  ['a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p == null', 'evaluates'],
  // hostile device values
  ['boom == 1', 'evaluates'],
  ['semver(x, "<", "1.0.0")', 'evaluates'],
  ['digits * digits > 1', 'evaluates'],
  ['digits ^ digits == null', 'evaluates'],
];

describe('hostile policies', () => {
  let prototypeNames: string[];
  let globalNames: string[];
  beforeAll(() => {
    prototypeNames = Object.getOwnPropertyNames(Object.prototype);
    globalNames = Object.getOwnPropertyNames(globalThis);
  });
  afterAll(() => {
    // Nothing in the corpus may reach the prototype or the global object.
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeNames);
    expect(Object.getOwnPropertyNames(globalThis)).toEqual(globalNames);
  });

  it('has a corpus of at least 40 expressions', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(40);
  });

  const cases = corpus.map(([source, expectation, reason]) => ({ source, expectation, reason }));
  it.each(cases)('$source → $expectation', ({ source, expectation, reason }) => {
    if (expectation === 'rejected') {
      let error: unknown;
      try {
        compilePolicy(source);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(PolicyError);
      const policyError = error as PolicyError;
      if (reason) expect(policyError.reason).toMatch(reason);
      expect(policyError.column).toBeGreaterThanOrEqual(1);
      expect(policyError.column).toBeLessThanOrEqual(Math.min(source.length, 1000) + 1);
      return;
    }
    const policy = compilePolicy(source);
    for (const device of hostileDevices()) {
      const result = policy.evaluate(device);
      expect([true, false, null]).toContain(result);
    }
  });

  it('answers catastrophic-backtracking regexes on 1 KiB device strings correctly', () => {
    const [device] = hostileDevices() as [PolicyContext];
    expect(compilePolicy('x =~ /(a+)+$/').evaluate(device)).toBe(false);
    expect(compilePolicy('x =~ /(a+)+!$/').evaluate(device)).toBe(true);
    expect(compilePolicy('xs =~ /(x+x+)+y/').evaluate(device)).toBe(false);
    expect(compilePolicy('words =~ /^(\\w+\\s?)*$/').evaluate(device)).toBe(false);
    expect(compilePolicy('x =~ /a*a*a*a*a*a*a*a*b/').evaluate(device)).toBe(false);
    expect(compilePolicy('x !~ /((a+)+)+c/').evaluate(device)).toBe(true);
  });

  it('runs every pattern that could backtrack badly on the linear engine', () => {
    for (const source of [
      'x =~ /(a+)+$/',
      'x =~ /(a|aa)+$/',
      'x =~ /(.*a){20}$/',
      'x =~ /a*a*a*a*a*a*a*a*b/',
    ]) {
      const { root } = parsePolicy(source);
      expect(root.kind === 'match' && root.regex.engine, source).toBe('linear');
    }
  });

  it('treats a throwing device getter as an evaluation error, not an exception', () => {
    for (const device of hostileDevices()) {
      expect(compilePolicy('boom == 1').evaluate(device)).toBe(null);
      expect(compilePolicy('id == "dev-1" || boom == 1').evaluate(device)).toBe(true);
    }
  });
});

describe('random input', () => {
  const value = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('1', '0', '-2.5', 'true', 'false', '', '1.2.3', '2.0.0-rc.1', 'NaN'),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.dictionary(fc.constantFrom('b', 'rev', 'c'), fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), {
      maxKeys: 3,
    }),
  );
  const context = fc.dictionary(
    fc.constantFrom('a', 'b', 'x', 'hw', 'version', 'region', 'a-b', 'toString'),
    value,
    {
      maxKeys: 8,
    },
  );
  const token = fc.constantFrom(
    'a',
    'b',
    'x',
    'hw',
    'hw.rev',
    'a-b',
    'version',
    'newVersion',
    'toString',
    'constructor',
    '1',
    '-2',
    '0.5',
    '"1.0.0"',
    '"x"',
    "'y'",
    'true',
    'false',
    'null',
    '==',
    '!=',
    '<',
    '<=',
    '>',
    '>=',
    '+',
    '-',
    '*',
    '/',
    '%',
    '^',
    '^=',
    '^!=',
    '$=',
    '$!=',
    '><',
    '<>',
    '=~',
    '!~',
    '/a+b/i',
    '/(x+)+/',
    '&&',
    '||',
    '!',
    '(',
    ')',
    '[',
    ']',
    ',',
    'in',
    '?',
    ':',
    'semver(',
    'satisfies(',
    '"<"',
    '"^1.0"',
    '.',
    '`',
    '=',
    'this',
    'new',
  );
  const soup = fc
    .array(token, { minLength: 1, maxLength: 20 })
    .chain((tokens) => fc.boolean().map((spaced) => tokens.join(spaced ? ' ' : '')));

  function compileOrPolicyError(source: string) {
    try {
      return compilePolicy(source);
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyError);
      return undefined;
    }
  }

  // Valid policies from a grammar, to compare the two independent evaluators on many shapes.
  const operand = fc.constantFrom(
    'a',
    'b',
    'x',
    'hw.rev',
    'hw.b',
    'a-b',
    'toString',
    'missing',
    'version',
    '1',
    '-2',
    '0.5',
    '256',
    '"256"',
    '"x"',
    '"true"',
    '"1.0.0"',
    '""',
    'true',
    'false',
    'null',
  );
  const binary = fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '^=', '^!=', '$=', '$!=', '><', '<>');
  const arith = fc.constantFrom('+', '-', '*', '/', '%', '^');
  const policy: fc.Arbitrary<string> = fc.letrec<{ p: string; v: string }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      operand,
      fc.tuple(tie('v'), arith, tie('v')).map(([l, o, r]) => `(${l} ${o} ${r})`),
      fc.tuple(tie('p'), tie('v'), tie('v')).map(([t, y, n]) => `(${t} ? ${y} : ${n})`),
      tie('v').map((v) => `-${v}`),
    ),
    p: fc.oneof(
      { depthSize: 'small' },
      fc.tuple(tie('v'), binary, tie('v')).map(([l, o, r]) => `${l} ${o} ${r}`),
      fc.tuple(tie('p'), fc.constantFrom('&&', '||'), tie('p')).map(([l, o, r]) => `(${l} ${o} ${r})`),
      tie('p').map((p) => `!(${p})`),
      tie('v'),
      fc
        .tuple(tie('v'), fc.subarray(['"x"', '1', '"1"', 'true', 'null', '"us"', '-2']))
        .map(([v, xs]) => `${v} in [${xs.join(', ')}]`),
      fc.tuple(tie('v'), fc.constantFrom('=~ /^a/i', '!~ /(x+)+y/', '=~ "1"')).map(([v, m]) => `${v} ${m}`),
      fc
        .tuple(tie('v'), fc.constantFrom('<', '>=', '=='), tie('v'))
        .map(([l, o, r]) => `semver(${l}, "${o}", ${r})`),
      tie('v').map((v) => `satisfies(${v}, "^1.0 || 2.x")`),
    ),
  })).p;

  it('either refuses a random string with a PolicyError or evaluates it without throwing', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 30 }), soup, policy),
        context,
        (source, ctx) => {
          const policy = compileOrPolicyError(source);
          if (!policy) return;
          for (const c of [ctx, safeObject(ctx)]) expect([true, false, null]).toContain(policy.evaluate(c));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('evaluates random valid policies identically on plain and on safeObject contexts', () => {
    fc.assert(
      fc.property(policy, context, (source, ctx) => {
        let root: ReturnType<typeof parsePolicy>['root'];
        try {
          root = parsePolicy(source).root;
        } catch (e) {
          expect(e).toBeInstanceOf(PolicyError); // e.g. over 50 terms
          return;
        }
        const evaluate = interpretPolicy(root);
        const plain = evaluate(ctx);
        expect([true, false, null], source).toContain(plain);
        expect(evaluate(safeObject(ctx)), source).toBe(plain);
      }),
      { numRuns: 3000 },
    );
  });
});
