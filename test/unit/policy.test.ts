import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import jsep from 'jsep';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '#core/errors.ts';
import {
  compilePolicy,
  DEFAULT_POLICY,
  POLICY_LIMITS,
  type PolicyContext,
  policyContext,
  safeObject,
} from '#core/policy.ts';
import { interpretPolicy } from '#core/policy-interpret.ts';
import { parsePolicy } from '#core/policy-parse.ts';
import { compileSafeRegex, REGEX_LIMITS, RegexRejection } from '#core/policy-regex.ts';
import type { DeviceCheckin, UpdateRecord } from '#core/types.ts';
import { findCandidate } from '#functions/selection.ts';

/**
 * Evaluates on a plain context and on a safeObject copy (read without per-property own checks) and
 * requires both, and the cached compiled policy, to agree.
 */
function run(source: string, context: PolicyContext = {}): boolean | null {
  const { root } = parsePolicy(source.trim() === '' ? DEFAULT_POLICY : source);
  const evaluate = interpretPolicy(root);
  const results = [evaluate(context), evaluate(safeObject(context))];
  expect(new Set(results).size, `contexts disagree on ${source}: ${results.join(', ')}`).toBe(1);
  expect(compilePolicy(source).evaluate(context)).toBe(results[0]);
  return results[0]!;
}

function policyError(source: string): PolicyError {
  try {
    compilePolicy(source);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return e as PolicyError;
  }
  throw new Error(`expected a PolicyError for ${source}`);
}

/** Folders of code that ships (in the Lambda bundle, the CLI or the agent). */
const SHIPPED = ['core', 'functions', 'cli', 'admin', 'agent', 'local', 'infra'];

const device: PolicyContext = {
  id: 'dev-1',
  product: 'pro',
  version: '1.2.3',
  newVersion: '2.0.0',
  major: 1,
  minor: 2,
  patch: 3,
  prerelease: '',
  region: 'eu',
  ram: '256',
  cores: 4,
  test: 'true',
  beta: false,
  model: 'X1-200',
  serial: 100007,
  name: 'bench-lab',
  'try-beta-features': '1',
  hw: { rev: '3', vendor: 'acme', board: { gen: 2 } },
  empty: null,
};

describe('operators', () => {
  it.each([
    ['product == "pro"', true],
    ['product != "pro"', false],
    ['cores < 5', true],
    ['cores <= 4', true],
    ['cores > 4', false],
    ['cores >= 4', true],
    ['cores + 1 == 5', true],
    ['cores - 1 == 3', true],
    ['cores * 2 == 8', true],
    ['cores / 8 == 0.5', true],
    ['cores % 3 == 1', true],
    ['cores ^ 2 == 16', true],
    ['(cores + 1) * 2 == 10', true],
    ['model ^= "X1"', true],
    ['model ^!= "X1"', false],
    ['model $= "200"', true],
    ['model $!= "200"', false],
    ['name >< "lab"', true],
    ['name <> "lab"', false],
    ['model =~ /^x1-\\d+$/i', true],
    ['model !~ /^x1/', true],
    ['model =~ "^X1"', true],
    ['region in ["us", "eu"]', true],
    ['region in ["us", "ap"]', false],
    ['cores in [1, 4]', true],
    ['product == "pro" && cores == 4', true],
    ['product == "lite" && cores == 4', false],
    ['product == "lite" || cores == 4', true],
    ['!(product == "lite")', true],
    ['cores > 2 ? region == "eu" : false', true],
    ['cores > 9 ? true : region == "us"', false],
    ['true', true],
    ['false', false],
    ['null', false],
  ])('%s → %s', (source, expected) => {
    expect(run(source, device)).toBe(expected);
  });

  it('gives ^ (power) higher precedence than * and makes it right-associative', () => {
    expect(run('2 * 3 ^ 2 == 18')).toBe(true);
    expect(run('2 ^ 3 ^ 2 == 512')).toBe(true);
    expect(run('-2 ^ 2 == 4')).toBe(true);
  });

  it('keeps the usual precedence of arithmetic, comparison and logic', () => {
    expect(run('1 + 2 * 3 == 7')).toBe(true);
    expect(run('10 - 4 - 3 == 3')).toBe(true);
    expect(run('false && false || true')).toBe(true);
    expect(run('true || false && false')).toBe(true);
    expect(run('1 < 2 == true')).toBe(true);
    expect(run('region in ["eu"] && cores == 4', device)).toBe(true);
  });

  it('short-circuits && and ||: the right side of a decided operator is not evaluated', () => {
    // Evaluating the right side would flag a data error (a non-version given to semver()).
    expect(run('true || semver(name, "<", "1.0.0")', device)).toBe(true);
    expect(run('false && semver(name, "<", "1.0.0")', device)).toBe(false);
    expect(run('false || semver(name, "<", "1.0.0")', device)).toBe(null);
  });

  it('nests ternaries to the right', () => {
    expect(run('cores == 1 ? false : cores == 4 ? true : false', device)).toBe(true);
    expect(run('(cores > 1 ? 10 : 0) + 1 == 11', device)).toBe(true);
  });
});

describe('coercion (DESIGN §3)', () => {
  it.each([
    // numbers and numeric strings compare numerically
    ['ram == 256', true],
    ['ram == "256.0"', true],
    ['ram > 64', true],
    ['ram > "64"', true],
    ['cores == "4"', true],
    ['cores < "10"', true],
    ['"10" > "9"', true],
    ['"1e3" == 1000', true],
    // "true"/"false" strings equal booleans
    ['test == true', true],
    ['test == "true"', true],
    ['beta == "false"', true],
    ['beta == false', true],
    ['test != false', true],
    // other strings compare by code unit
    ['region < "fr"', true],
    ['"B" < "a"', true],
    ['"abc" < "abd"', true],
    ['"10" < "9x"', true],
    // null equals only null
    ['empty == null', true],
    ['missing == null', true],
    ['missing == 0', false],
    ['missing == ""', false],
    ['missing == false', false],
    ['missing != 0', true],
    ['0 == null', false],
    // ordering with null is false
    ['missing < 1', false],
    ['missing >= 1', false],
    ['missing > "a"', false],
    ['null <= null', false],
    // mixed other types: == false, ordering false
    ['cores == true', false],
    ['test == 1', false],
    ['region == 0', false],
    ['region > 5', false],
    ['region < 5', false],
    ['true > false', false],
    ['hw == "acme"', false],
    ['hw > 1', false],
    // Number() accepts these, the policy language does not: they are ordinary strings
    ['"" == 0', false],
    ['" 1" == 1', false],
    ['"0x10" == 16', false],
    ['"0b1" == 1', false],
    ['"Infinity" > 1', false],
    // arithmetic takes numbers and numeric strings; anything else is an evaluation error (null)
    ['ram + 1 == 257', true],
    ['ram * "2" == 512', true],
    ['region + 1 == null', null],
    ['missing + 1 == null', null],
    ['true + 1 == null', null],
    ['1 / 0 == null', null],
    ['-region == null', null],
    ['-ram == -256', true],
  ])('%s → %s', (source, expected) => {
    expect(run(source, device)).toBe(expected);
  });

  it('fails the evaluation (null: no match, a PolicyErrors metric) on arithmetic that is not a finite number', () => {
    // Each matched devices without the property while arithmetic failures read as null (null == null).
    const bare: PolicyContext = { id: 'd', version: '1.0.0', newVersion: '2.0.0' };
    for (const source of [
      'model == "X1" + "-pro"',
      'memory == 2^2000',
      'region == 0/0',
      'model != "X1" + "-pro"',
      '!(model == "X1" + "-pro")',
      'memory == 1 % 0',
      'missing == -missing',
      'true ? region == 0/0 : true',
    ]) {
      expect(run(source, bare), source).toBe(null);
      expect(run(source, device), source).toBe(null);
    }
    // Operands the device sends that are not finite numbers: "1e400" reads as Infinity.
    expect(run('big / 2 > 1', { big: '1e400' })).toBe(null);
    expect(run('1 / big == 0', { big: '1e400' })).toBe(null);
    // A decided && or || does not evaluate its right side, so nothing fails there.
    expect(run('true || model == "X1" + "-pro"', bare)).toBe(true);
    expect(run('false && model == "X1" + "-pro"', bare)).toBe(false);
    expect(run('memory == 2^10', { memory: '1024' })).toBe(true);
  });

  it('warns about arithmetic that can never be a number, naming the column of the operand', () => {
    const warned = (source: string) => compilePolicy(source).warnings.map((w) => [w.column, w.reason]);
    const fails = 'so this arithmetic always fails (an evaluation error: no match)';
    expect(warned('model == "X1" + "-pro"')).toEqual([
      [10, `"X1" is not a number, ${fails}`],
      [17, `"-pro" is not a number, ${fails}`],
    ]);
    expect(warned('memory == 2^2000')).toEqual([[11, `this constant is not a finite number, ${fails}`]]);
    expect(warned('region == 0/0')).toEqual([[11, `this constant is not a finite number, ${fails}`]]);
    expect(warned('x - null == 1')).toEqual([[5, `null is not a number, ${fails}`]]);
    expect(warned('(a > 1) * 2 == 2')).toEqual([
      [1, `a comparison or test gives true/false, not a number, ${fails}`],
    ]);
    expect(warned('(a ? "x" : "y") + 1 == 2')).toEqual([[1, `neither branch of ?: is a number, ${fails}`]]);
    // What can be a number is not warned about: properties, numeric strings, finite constants.
    for (const fine of ['ram * "2" == 512', 'memory == 2^10', '(a ? 1 : "y") + 1 == 2', '-ram == -256', '']) {
      expect(warned(fine), fine).toEqual([]);
    }
  });

  it('counts an arithmetic failure as a policy error in update selection, not as a match', () => {
    const update: UpdateRecord = {
      id: 'u1',
      product: 'p',
      version: '2.0.0',
      policy: 'model == "X1" + "-pro"',
      description: '',
      enabled: true,
      paused: false,
      allowDowngrade: false,
      key: 'images/p/2.0.0/img',
      checksum: '0'.repeat(64),
      size: 1,
      created: '2026-01-01T00:00:00.000Z',
      counters: { started: 0, success: 0, failure: 0, deferred: 0 },
    };
    const checkin: DeviceCheckin = { id: 'd', product: 'p', version: '1.0.0', body: { id: 'd' } };
    const errors: string[] = [];
    const candidate = findCandidate([update], checkin, policyContext(checkin.body, '1.0.0', '2.0.0'), (u) =>
      errors.push(u.id),
    );
    expect(candidate).toBe(undefined);
    expect(errors).toEqual(['u1']);
  });

  it('treats "false", "0", "", 0, null as false in boolean contexts, as C clients send strings', () => {
    const ctx = { f: 'false', z: '0', e: '', n: 0, t: 'true', one: '1', s: 'yes', obj: { a: 1 } };
    expect(run('f', ctx)).toBe(false);
    expect(run('z', ctx)).toBe(false);
    expect(run('e', ctx)).toBe(false);
    expect(run('n', ctx)).toBe(false);
    expect(run('missing', ctx)).toBe(false);
    expect(run('!f && !z', ctx)).toBe(true);
    expect(run('t && one && s && obj', ctx)).toBe(true);
  });

  it('lets the literal be on either side of a comparison', () => {
    expect(run('256 == ram', device)).toBe(true);
    expect(run('64 < ram', device)).toBe(true);
    expect(run('"pro" == product', device)).toBe(true);
    expect(run('"X1" ^= model', device)).toBe(false);
  });

  it('compares two properties with the same rules as a property and a literal', () => {
    const ctx = { a: '10', b: 9, c: 'true', d: true, e: 'x', f: null, g: null };
    expect(run('a > b', ctx)).toBe(true);
    expect(run('c == d', ctx)).toBe(true);
    expect(run('e == b', ctx)).toBe(false);
    expect(run('f == g', ctx)).toBe(true);
    expect(run('f < g', ctx)).toBe(false);
    expect(run('e > a', ctx)).toBe(true);
  });

  it('applies text operators to numbers and booleans as their strings, and never to null', () => {
    expect(run('serial $= "7"', device)).toBe(true);
    expect(run('serial ^= 1000', device)).toBe(true);
    expect(run('beta >< "als"', device)).toBe(true);
    expect(run('missing ^= ""', device)).toBe(false);
    expect(run('missing ^!= "x"', device)).toBe(true);
    expect(run('hw >< "acme"', device)).toBe(false);
    expect(run('model ^= region', { model: 'eu-1', region: 'eu' })).toBe(true);
    expect(run('model $= missing', { model: 'eu-1' })).toBe(false);
  });

  it('matches membership with == semantics', () => {
    expect(run('ram in [128, 256]', device)).toBe(true);
    expect(run('test in [true]', device)).toBe(true);
    expect(run('missing in [null]', device)).toBe(true);
    expect(run('missing in ["a", "b"]', device)).toBe(false);
    expect(run('region in []', device)).toBe(false);
    const many = Array.from({ length: 12 }, (_, i) => `"r${i}"`).join(', ');
    expect(run(`region in [${many}, "eu"]`, device)).toBe(true);
    expect(run(`region in [${many}]`, device)).toBe(false);
  });
});

describe('names', () => {
  it('reads unknown names as null, never as an error', () => {
    expect(run('nothing == null', device)).toBe(true);
    expect(run('nothing.deeper.still == null', device)).toBe(true);
  });

  it('reads names with inner hyphens; subtraction needs spaces', () => {
    expect(run('try-beta-features == 1', device)).toBe(true);
    expect(run('cores - 1 == 3', device)).toBe(true);
    expect(run('cores -1 == 3', device)).toBe(true);
    expect(run('a-b == 1', { 'a-b': 1, a: 5, b: 1 })).toBe(true);
    expect(run('a - b == 4', { 'a-b': 1, a: 5, b: 1 })).toBe(true);
    expect(run('x-1 == "y"', { 'x-1': 'y', x: 3 })).toBe(true);
    expect(run('5-3 == 2')).toBe(true);
  });

  it('never reads inherited properties, whatever the operator shape', () => {
    const inherited = Object.create({ flag: true, name: 'lab-1', rev: 3, region: 'eu' }) as PolicyContext;
    inherited.hw = Object.create({ rev: 3 }) as PolicyContext;
    for (const source of [
      'flag == true',
      'flag == "true"',
      'name >< "lab"',
      'name ^= "lab"',
      'name $= "1"',
      'rev >= 3',
      'rev == 3',
      'hw.rev >= 3',
      'hw.rev == 3',
      'region == "eu"',
      'region in ["eu"]',
      'toString ^= "f"',
      'toString.name == "toString"',
    ]) {
      expect(run(source, inherited), source).toBe(false);
    }
    expect(run('name <> "lab" && flag != true && hw.rev == null', inherited)).toBe(true);
  });

  it('reads nested properties with dots', () => {
    expect(run('hw.rev >= 3', device)).toBe(true);
    expect(run('hw.board.gen == 2', device)).toBe(true);
    expect(run('hw . vendor == "acme"', device)).toBe(true);
  });

  it('reads members of null and of non-objects as null', () => {
    expect(run('empty.x == null', device)).toBe(true);
    expect(run('region.length == null', device)).toBe(true);
    expect(run('cores.x == null', device)).toBe(true);
    expect(run('list.length == null', { list: [1, 2] })).toBe(true);
    expect(run('list == null', { list: () => 1 })).toBe(true);
  });

  it("reads only the device's own properties, never Object.prototype", () => {
    expect(run('toString == null', device)).toBe(true);
    expect(run('hasOwnProperty == null', device)).toBe(true);
    expect(run('hw.valueOf == null', device)).toBe(true);
    expect(run('toString == "mine"', { toString: 'mine' })).toBe(true);
    const inherited = Object.create({ product: 'pro', hw: { rev: 9 } }) as PolicyContext;
    expect(run('product == "pro"', inherited)).toBe(false);
    expect(run('product != "pro"', inherited)).toBe(true);
    expect(run('hw.rev == 9', inherited)).toBe(false);
  });

  it('ignores properties added to Object.prototype (prototype pollution)', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 'x';
    try {
      expect(run('polluted == "x"', { a: 1 })).toBe(false);
      expect(run('a.polluted == "x"', { a: { b: 1 } })).toBe(false);
      expect(run('polluted ^= "x" || polluted in ["x"] || polluted =~ /x/', { a: 1 })).toBe(false);
    } finally {
      delete proto.polluted;
    }
  });
});

describe('semver() and satisfies()', () => {
  it('compares by SemVer 2.0 precedence with every operator', () => {
    const ctx = { version: '1.2.3', newVersion: '1.10.0' };
    expect(run('semver(version, "<", newVersion)', ctx)).toBe(true);
    expect(run('semver(version, "<=", "1.2.3")', ctx)).toBe(true);
    expect(run('semver(version, ">", "1.2.3-rc.1")', ctx)).toBe(true);
    expect(run('semver(version, ">=", "1.2.4")', ctx)).toBe(false);
    expect(run('semver(version, "==", "1.2.3+build.7")', ctx)).toBe(true);
    expect(run('semver(version, "!=", "1.2.3")', ctx)).toBe(false);
    expect(run('semver("1.0.0-alpha", "<", "1.0.0-alpha.1")')).toBe(true);
    expect(run('semver("1.0.0-alpha.beta", "<", "1.0.0-beta")')).toBe(true);
    expect(run('semver("1.0.0-beta.2", "<", "1.0.0-beta.11")')).toBe(true);
    expect(run('semver("1.0.0-rc.1", "<", "1.0.0")')).toBe(true);
  });

  it('accepts a computed operator, checked at evaluation', () => {
    expect(run('semver(version, op, "2.0.0")', { version: '1.0.0', op: '<' })).toBe(true);
    expect(run('semver(version, op, "2.0.0")', { version: '1.0.0', op: '~' })).toBe(null);
  });

  it('reports a non-version operand as an evaluation error (null), a missing one as no match', () => {
    expect(run('semver(fw, "<", "2.0.0")', { fw: 'banana' })).toBe(null);
    expect(run('semver(fw, "<", "2.0.0")', { fw: 7 })).toBe(null);
    expect(run('semver(fw, "<", "2.0.0")', {})).toBe(false);
    expect(run('semver(fw, "<", "2.0.0") || ok', { fw: 'banana', ok: true })).toBe(true);
  });

  it('tests ranges with satisfies()', () => {
    expect(run('satisfies(version, "^1.2 || 2.x")', { version: '1.4.0' })).toBe(true);
    expect(run('satisfies(version, "^1.2 || 2.x")', { version: '3.0.0' })).toBe(false);
    expect(run('satisfies(version, ">=1.0.0 <1.5.0")', { version: '1.4.9' })).toBe(true);
    expect(run('satisfies(version, "^1.2")', { version: 'x' })).toBe(null);
  });

  it('checks literal versions, operators and ranges at parse time', () => {
    expect(policyError('semver(version, "<", "1.2")').reason).toBe('Invalid version "1.2": not SemVer 2.0');
    expect(policyError('semver(version, "~", "1.2.0")').column).toBe(17);
    expect(policyError('semver(version, "<")').reason).toBe('semver() takes 3 arguments (a, op, b), got 2');
    expect(policyError('satisfies(version)').reason).toBe(
      'satisfies() takes 2 arguments (version, range), got 1',
    );
    expect(policyError('satisfies(version, "not a range")').column).toBe(20);
    expect(policyError('satisfies(version, range)').reason).toMatch(/must be a string literal/);
    expect(policyError('semver(version, "<", 2)').reason).toBe('Invalid version 2: not SemVer 2.0');
  });
});

describe('default policy', () => {
  it('uses semver(version, "<", newVersion) for an empty or blank policy', () => {
    for (const source of ['', '   ', '\n\t']) {
      const policy = compilePolicy(source);
      expect(policy.source).toBe(DEFAULT_POLICY);
      expect(policy.evaluate({ version: '1.0.0', newVersion: '1.0.1' })).toBe(true);
      expect(policy.evaluate({ version: '1.0.1', newVersion: '1.0.1' })).toBe(false);
      expect(policy.evaluate({ version: '2.0.0', newVersion: '1.0.1' })).toBe(false);
    }
    expect(compilePolicy('').explain()).toMatch(/^default policy/);
  });
});

describe('errors', () => {
  it('names the reason, the 1-based column and shows a caret excerpt', () => {
    const e = policyError('eval(1)');
    expect(e.message).toBe('Unknown function "eval" at column 1\neval(1)\n^');
    expect(e.reason).toBe('Unknown function "eval"');
    expect(e.column).toBe(1);
    expect(e.excerpt).toBe('eval(1)\n^');
  });

  it.each([
    ['product == ', 'Expected expression after ==', 12],
    ['product === "pro"', 'There is no === operator (use ==)', 9],
    ['product !== "pro"', 'There is no !== operator (use !=)', 9],
    ['a = 1', 'Assignment is not allowed (compare with ==)', 3],
    ['a b', 'Unexpected "b" (a policy is one expression; missing operator?)', 3],
    ['(a', 'Unclosed (', 3],
    ['"abc', 'Unclosed quote after "abc"', 5],
    ['a && (b || exec(1))', 'Unknown function "exec"', 12],
    ['hw["rev"]', 'Computed member access is not allowed (use a.b)', 3],
    ['x in y', 'The right of "in" must be an array literal like ["us", "eu"]', 6],
    ['x in [a]', 'Array elements must be literals', 7],
    ['[1] == x', 'Array literals are only allowed on the right of "in"', 1],
    ['x =~ y', 'The right of =~ must be a regex literal like /^X1/', 6],
    ['/x/ == y', 'Regex literals are only allowed on the right of =~ or !~', 1],
    ['x =~ /a(?=b)/', 'Lookaround is not supported in policy regexes', 8],
    ['x =~ /(a)\\1/', 'Backreferences are not supported in policy regexes', 10],
    ['x =~ /a/g', 'Regex flag "g" is not allowed (a policy tests one value)', 6],
    ['a ^ ^ b', 'Expected expression after ^', 5],
    ['a ? b', 'Expected :', 6],
  ])('%s → %s at column %i', (source, reason, column) => {
    const e = policyError(source);
    expect(e.reason).toBe(reason);
    expect(e.column).toBe(column);
    expect(e.excerpt).toBe(`${source}\n${' '.repeat(column - 1)}^`);
  });

  it('windows the excerpt of a long policy around the column', () => {
    const source = `${'long_property_name_x == 1 && '.repeat(20)}eval(1)`;
    const e = policyError(source);
    expect(e.column).toBe(581);
    const [line, caret] = e.excerpt.split('\n') as [string, string];
    expect(line.length).toBeLessThanOrEqual(82);
    expect(line[caret.indexOf('^')]).toBe('e');
  });
});

describe('limits', () => {
  const terms = (n: number) => Array.from({ length: n }, (_, i) => `a${i}`).join(' || ');

  it('allows 50 terms and rejects the 51st at its column', () => {
    expect(compilePolicy(terms(50)).terms).toBe(50);
    const e = policyError(terms(51));
    expect(e.reason).toBe('More than 50 terms');
    expect(e.column).toBe(terms(50).length + 5);
  });

  it('counts names, literals, array elements, regexes and calls as terms', () => {
    expect(compilePolicy('product == "pro"').terms).toBe(2);
    expect(compilePolicy('hw.board.gen >= 2').terms).toBe(2);
    expect(compilePolicy('region in ["us", "eu", "ap"]').terms).toBe(4);
    expect(compilePolicy('model =~ /^X1/').terms).toBe(2);
    expect(compilePolicy(DEFAULT_POLICY).terms).toBe(4);
  });

  it('allows 1,000 characters and rejects more', () => {
    const padded = `a == 1${' '.repeat(POLICY_LIMITS.maxLength - 6)}`;
    expect(padded.length).toBe(1000);
    expect(compilePolicy(padded).terms).toBe(2);
    const e = policyError(`${padded} `);
    expect(e.reason).toBe('Policy longer than 1000 characters');
    expect(e.column).toBe(1001);
  });

  it('allows regexes of 200 characters and rejects longer ones', () => {
    expect(compilePolicy(`x =~ /${'a'.repeat(200)}/`).terms).toBe(2);
    const e = policyError(`x =~ /${'a'.repeat(201)}/`);
    expect(e.reason).toBe('Regex longer than 200 characters');
    expect(e.column).toBe(6);
  });

  it('allows nesting 32 deep and rejects 33', () => {
    const nest = (n: number) => `${'('.repeat(n)}x${')'.repeat(n)} == 1`;
    expect(run(nest(32), { x: 1 })).toBe(true);
    const e = policyError(nest(33));
    expect(e.reason).toBe('Nesting deeper than 32 levels');
    expect(e.column).toBe(34);
    expect(policyError(`${'!'.repeat(40)}x`).reason).toBe('Nesting deeper than 32 levels');
  });
});

describe('compilePolicy', () => {
  it('caches compiled policies by source', () => {
    expect(compilePolicy('cores == 4')).toBe(compilePolicy('cores == 4'));
  });

  it('explains the parse as an indented tree with columns', () => {
    const text = compilePolicy('hw.rev >= 3 && region in ["us"]').explain();
    expect(text.split('\n')).toEqual([
      '&&  and (stops at the first false)  [column 1]',
      '  >=  greater than or equal, numerically when both are numbers or numeric strings  [column 1]',
      '    property hw.rev (null when the device does not send it)  [column 1]',
      '    number 3  [column 11]',
      '  in  one of ["us"]  [column 16]',
      '    property region (null when the device does not send it)  [column 16]',
    ]);
  });

  it('returns null rather than throwing when the context is not an object', () => {
    expect(compilePolicy('product == "pro"').evaluate(null as unknown as PolicyContext)).toBe(null);
  });

  it('evaluates where code generation from strings is disabled (no generated code)', () => {
    const script = [
      "import { compilePolicy } from '#core/policy.ts';",
      'const p = compilePolicy(\'hw.rev >= 3 && region in ["eu"]\');',
      "let blocked = false; try { new Function('') } catch { blocked = true }",
      'console.log(JSON.stringify([blocked, p.evaluate({ hw: { rev: "4" }, region: "eu" }), p.evaluate({ hw: { rev: 2 } })]));',
    ].join('\n');
    const out = execFileSync(
      process.execPath,
      ['--disallow-code-generation-from-strings', '--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual([true, true, false]);
  });

  it('is the only jsep user in the shipped code, since it configures jsep for the whole process', () => {
    // Value imports only: policy-parse.ts imports jsep's types.
    const pattern = "^import [a-zA-Z]+ from '(jsep|@jsep-plugin/[a-z]+)'";
    const users = execFileSync('git', ['grep', '--untracked', '-l', '-E', pattern, '--', ...SHIPPED], {
      encoding: 'utf8',
    });
    expect(users.trim().split('\n')).toEqual(['core/policy-grammar.ts']);
  });

  it('has one engine that generates no code: no new Function or eval in core/ or functions/', () => {
    const grep = spawnSync(
      'git',
      ['grep', '--untracked', '-n', '-E', 'new Function\\(|\\beval\\(', '--', 'core', 'functions'],
      {
        encoding: 'utf8',
      },
    );
    expect(grep.stdout).toBe('');
    expect(grep.status).toBe(1); // git grep: 1 = nothing found (2 would be an error)
  });

  it('parses with the policy grammar configured once, not jsep defaults', () => {
    compilePolicy('a ^= "x" || b ^ 2 == 4 || c in [1]');
    // `^` is power (not xor), `**` and `|` are not operators, `^=` is "starts with".
    expect(() => jsep('a | b')).toThrow();
    expect(() => jsep('a ** b')).toThrow();
    expect((jsep('a ^= b') as jsep.BinaryExpression).operator).toBe('^=');
    expect(parsePolicy('2 ^ 3 ^ 2 == 512').root.kind).toBe('compare');
  });
});

describe('policyContext', () => {
  it('adds version parts and newVersion to the device properties', () => {
    const ctx = policyContext(
      { id: 'd', product: 'p', version: '1.2.3-beta.2', hw: { rev: 2 } },
      '1.2.3-beta.2',
      '1.3.0',
    );
    expect({ ...ctx }).toEqual({
      id: 'd',
      product: 'p',
      version: '1.2.3-beta.2',
      hw: { rev: 2 },
      major: 1,
      minor: 2,
      patch: 3,
      prerelease: 'beta.2',
      newVersion: '1.3.0',
    });
    expect(compilePolicy('prerelease ^= "beta" && hw.rev == 2 && minor == 2').evaluate(ctx)).toBe(true);
    expect(compilePolicy('prerelease == ""').evaluate(policyContext({}, '1.0.0', '1.0.1'))).toBe(true);
  });
});

describe('regex engines', () => {
  it('refuses patterns whose program exceeds the cost bound, with the reason', () => {
    for (const source of [
      '(?:.|a){1,1000}$',
      '[a-z]{0,1000}[a-z]{0,1000}[a-z]{0,1000}!',
      '^(a?){25}a{25}$',
    ]) {
      expect(() => compileSafeRegex(source, '')).toThrow(
        /^Regex too complex: it compiles to .* steps, the limit is 64/,
      );
    }
    for (const source of ['^X1-\\d+$', '(a+)+$', '(a|aa)*b', 'a*a*a*a*b', '(a?){24}z']) {
      expect(compileSafeRegex(source, '').programSize).toBeLessThanOrEqual(REGEX_LIMITS.maxProgramSize);
    }
  });

  it('rejects syntax outside the supported subset with the offset of the problem', () => {
    const reject = (source: string, flags = '') => {
      try {
        compileSafeRegex(source, flags);
      } catch (e) {
        expect(e).toBeInstanceOf(RegexRejection);
        return (e as RegexRejection).offset;
      }
      throw new Error(`accepted ${source}`);
    };
    expect(reject('ab\\1')).toBe(2);
    expect(reject('a(?<=b)')).toBe(1);
    expect(reject('a{')).toBe(1);
    expect(reject('**')).toBe(0);
    expect(reject('\\p{L}')).toBe(0);
    expect(reject('a', 'u')).toBe(-1);
    expect(reject('a', 'ii')).toBe(-1);
    expect(reject('(a{1000}){1000}')).toBe(0);
  });

  // Generated patterns from the supported subset; the linear engine must agree with V8 on every input.
  const atom = fc.constantFrom(
    'a',
    'b',
    '.',
    '\\d',
    '\\w',
    '\\s',
    '[ab]',
    '[^a]',
    '[a-c]',
    'A',
    '\\.',
    '-',
    '\\b',
  );
  const pattern: fc.Arbitrary<string> = fc.letrec<{ re: string }>((tie) => ({
    re: fc.oneof(
      { depthSize: 'small' },
      atom,
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => a + b),
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => `(?:${a}|${b})`),
      fc
        .tuple(tie('re'), fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '{0,}', '*?'))
        .map(([a, q]) => `(?:${a})${q}`),
      fc.tuple(fc.constantFrom('^', ''), tie('re'), fc.constantFrom('$', '')).map(([s, a, e]) => s + a + e),
    ),
  })).re;

  it('agrees with JavaScript RegExp on generated patterns and inputs', () => {
    fc.assert(
      fc.property(
        pattern,
        fc.constantFrom('', 'i', 'm', 's', 'im'),
        fc.array(fc.stringMatching(/^[abAB1 .\n-]{0,12}$/), { minLength: 1, maxLength: 8 }),
        (source, flags, inputs) => {
          let safe: ReturnType<typeof compileSafeRegex>;
          try {
            safe = compileSafeRegex(source, flags);
          } catch (e) {
            // Only the cost bound may refuse a pattern of this subset.
            expect((e as Error).message).toMatch(/^Regex too complex/);
            return;
          }
          const native = new RegExp(source, flags);
          for (const input of inputs) {
            expect(safe.test(input), `${source}/${flags} on ${JSON.stringify(input)}`).toBe(
              native.test(input),
            );
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('matches case-insensitively beyond ASCII as JavaScript does', () => {
    for (const [source, input] of [
      ['é', 'É'],
      ['[à-ÿ]+', 'ÀÉ'],
      ['σ', 'Σ'],
      ['k', '\u212a'],
    ] as const) {
      expect(compileSafeRegex(source, 'i').test(input)).toBe(new RegExp(source, 'i').test(input));
    }
  });
});
