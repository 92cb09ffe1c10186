/**
 * The value semantics of the policy language (DESIGN §3) that the evaluator (policy-interpret.ts) and
 * the checks at publish time (policy-warnings.ts) share: coercion, truth, text, versions, arithmetic
 * failures, and own-property reads of the device context.
 */
import type SemVer from 'semver/classes/semver.js';
import parseSemver from 'semver/functions/parse.js';
import { type PolicyNode, SEMVER_OPS } from './policy-parse.ts';
import { OWN_ONLY } from './safe-object.ts';

export type PolicyContext = Record<string, unknown>;
/** A value during evaluation: JSON-like; objects are nested device properties. */
export type Value = string | number | boolean | null | object;

const hasOwn = Object.hasOwn;

/**
 * Set when an evaluation met a data error worth a PolicyErrors metric (a non-null operand of semver()
 * that is not a version, or a semver operator that is not one). Evaluation is synchronous and never
 * re-entrant, so one flag serves every policy.
 */
let dataError = false;
export function resetDataError(): void {
  dataError = false;
}
export function hadDataError(): boolean {
  return dataError;
}
export function flagDataError(): null {
  dataError = true;
  return null;
}

/** Whether evaluating `node` can flag a data error (only semver() and satisfies() can). */
export function mayRaiseDataError(node: PolicyNode): boolean {
  switch (node.kind) {
    case 'semver':
    case 'satisfies':
      return true;
    case 'literal':
    case 'ref':
      return false;
    case 'not':
    case 'negate':
      return mayRaiseDataError(node.arg);
    case 'match':
    case 'in':
      return mayRaiseDataError(node.subject);
    case 'conditional':
      return (
        mayRaiseDataError(node.test) ||
        mayRaiseDataError(node.consequent) ||
        mayRaiseDataError(node.alternate)
      );
    default:
      return mayRaiseDataError(node.left) || mayRaiseDataError(node.right);
  }
}

// ---------------------------------------------------------------- coercion

/**
 * The number a string spells in decimal notation, else NaN. Stricter than `Number()`, which also
 * accepts '', whitespace, hex, binary, octal and Infinity.
 */
export function numericValue(s: string): number {
  const n = +s;
  if (Number.isNaN(n)) return Number.NaN;
  const len = s.length;
  if (len === 0) return Number.NaN;
  const last = s.charCodeAt(len - 1);
  if (!((last >= 48 && last <= 57) || last === 46)) return Number.NaN;
  const first = s.charCodeAt(0);
  if (!((first >= 48 && first <= 57) || first === 46 || first === 45 || first === 43)) return Number.NaN;
  if (first === 48 && len > 2) {
    const second = s.charCodeAt(1) | 0x20;
    if (second === 0x78 || second === 0x6f || second === 0x62) return Number.NaN; // 0x 0o 0b
  }
  return n;
}

/** `==` of DESIGN §3. */
export function looseEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number') return tb === 'string' && numericValue(b as string) === a;
  if (ta === 'string') {
    if (tb === 'number') return numericValue(a as string) === b;
    if (tb === 'string') {
      const x = numericValue(a as string);
      return !Number.isNaN(x) && x === numericValue(b as string);
    }
    if (tb === 'boolean') return a === (b ? 'true' : 'false');
    return false;
  }
  if (ta === 'boolean') return tb === 'string' && b === (a ? 'true' : 'false');
  return false;
}

/** Order of two values: negative, zero, positive, or NaN when they are not ordered (null, booleans, objects, mixed). */
export function compareValues(a: Value, b: Value): number {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number') {
    if (tb === 'number') return (a as number) - (b as number);
    if (tb === 'string') return (a as number) - numericValue(b as string);
    return Number.NaN;
  }
  if (ta === 'string') {
    if (tb === 'number') return numericValue(a as string) - (b as number);
    if (tb === 'string') {
      const x = numericValue(a as string);
      const y = !Number.isNaN(x) ? numericValue(b as string) : Number.NaN;
      if (!Number.isNaN(y)) return x - y;
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    }
  }
  return Number.NaN;
}

/**
 * Truth of a value where a boolean is needed (`&&`, `||`, `!`, `?:`, the whole policy). As in JavaScript,
 * except that the strings "false" and "0" (what string-only clients send) are false.
 */
export function truth(v: Value): boolean {
  if (v === true) return true;
  if (v === false || v === null) return false;
  if (typeof v === 'string') {
    if (v === '' || v === 'false') return false;
    const n = numericValue(v);
    return n !== 0;
  }
  if (typeof v === 'number') return v !== 0 && !Number.isNaN(v);
  return true;
}

/** The string a value shows to the text operators, or null for null and objects. */
export function textOf(v: Value): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** Context values outside the JSON data model (functions, symbols, bigints, undefined) read as null. */
export function clean(v: unknown): Value {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return v;
    case 'object':
      return v;
    default:
      return null;
  }
}

// ---------------------------------------------------------------- arithmetic

/**
 * Arithmetic that meets an operand which is not a finite number (or numeric string), or whose result
 * is not finite, fails the whole evaluation: a non-match counted as a PolicyErrors metric. A null
 * result instead would equal every missing property (`model == "X1" + "-pro"` matched devices
 * without `model`). Thrown as one shared instance: it never leaves `evaluate`, so it needs no stack.
 */
class ArithmeticFailure extends Error {
  override readonly name = 'ArithmeticFailure';
}
const ARITHMETIC_FAILURE = new ArithmeticFailure('arithmetic on a value that is not a finite number');

/** An arithmetic operand: a finite number or numeric string, else the evaluation fails. */
export function arithmeticOperand(v: Value): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? numericValue(v) : Number.NaN;
  if (Number.isFinite(n)) return n;
  throw ARITHMETIC_FAILURE;
}

/** An arithmetic result: a finite number, else the evaluation fails (2^2000, 0/0, 1 % 0). */
export function arithmeticResult(n: number): number {
  if (Number.isFinite(n)) return n;
  throw ARITHMETIC_FAILURE;
}

/** A string that is neither numeric nor "true"/"false": equal only to the identical string. */
export function isPlainString(s: string): boolean {
  const n = numericValue(s);
  return Number.isNaN(n) && s !== 'true' && s !== 'false';
}

// ---------------------------------------------------------------- versions

export type Version = SemVer;
const versionCache = new Map<string, Version | null>();
const VERSION_CACHE_LIMIT = 1000;

/** Parses a version, remembering recent ones: a fleet runs few distinct versions. */
function parseVersion(s: string): Version | null {
  let v = versionCache.get(s);
  if (v === undefined) {
    v = parseSemver(s);
    if (versionCache.size >= VERSION_CACHE_LIMIT) versionCache.clear();
    versionCache.set(s, v);
  }
  return v;
}

export function versionOf(value: Value): Version | null {
  if (value === null) return null;
  const v = typeof value === 'string' ? parseVersion(value) : null;
  return v === null ? flagDataError() : v;
}

function compareIdentifiers(a: string | number, b: string | number): number {
  if (typeof a === 'number') return typeof b === 'number' ? a - b : -1;
  if (typeof b === 'number') return 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** SemVer 2.0 precedence (build metadata ignored). */
export function compareVersions(a: Version, b: Version): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  const pa = a.prerelease;
  const pb = b.prerelease;
  if (pa.length === 0) return pb.length === 0 ? 0 : 1;
  if (pb.length === 0) return -1;
  for (let i = 0; ; i++) {
    if (i === pa.length) return i === pb.length ? 0 : -1;
    if (i === pb.length) return 1;
    const c = compareIdentifiers(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
}

export function orderHolds(op: string, order: number): boolean {
  switch (op) {
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
    case '==':
      return order === 0;
    case '!=':
      return order !== 0;
    default:
      return false;
  }
}

/** `semver(a, op, b)` when the operator is only known at evaluation time. */
export function semverDynamic(a: Value, op: Value, b: Value): Value {
  if (typeof op !== 'string' || !SEMVER_OPS.has(op)) return flagDataError();
  const x = versionOf(a);
  if (x === null) return null;
  const y = versionOf(b);
  return y === null ? null : orderHolds(op, compareVersions(x, y));
}

// ---------------------------------------------------------------- reads

/** Whether `v`, read as `o[k]`, is `o`'s own property. */
export function own(o: Record<string | symbol, unknown>, k: string): boolean {
  return o[OWN_ONLY] === true || hasOwn(o, k);
}

/** `o[k]` is `o`'s own property, `o` being a nested device object (arrays have no members). */
export function ownMember(o: Record<string | symbol, unknown>, k: string): boolean {
  return o[OWN_ONLY] === true || (!Array.isArray(o) && hasOwn(o, k));
}
