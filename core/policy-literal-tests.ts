/**
 * Closures of the policy evaluator (policy-interpret.ts) that test one value against a literal, one
 * closure per operator so that an evaluation runs no operator dispatch.
 */
import type { CompareOp, TextOp } from './policy-parse.ts';
import { numericValue, own, type PolicyContext, type Value } from './policy-values.ts';

export type Get = (context: PolicyContext) => Value;
export type Test = (context: PolicyContext) => boolean;

/** `get(c) OP n` for a number n (a number literal, or a numeric string literal when the device sends a number). */
export function orderWithNumber(get: Get, op: CompareOp, n: number, s: string | null): Test {
  // s: the literal's own spelling when it is a string, used when the device's string is not numeric.
  switch (op) {
    case '<':
      return (c) => {
        const v = get(c);
        if (typeof v === 'number') return v < n;
        if (typeof v !== 'string') return false;
        const x = numericValue(v);
        return !Number.isNaN(x) ? x < n : s !== null && v < s;
      };
    case '<=':
      return (c) => {
        const v = get(c);
        if (typeof v === 'number') return v <= n;
        if (typeof v !== 'string') return false;
        const x = numericValue(v);
        return !Number.isNaN(x) ? x <= n : s !== null && v <= s;
      };
    case '>':
      return (c) => {
        const v = get(c);
        if (typeof v === 'number') return v > n;
        if (typeof v !== 'string') return false;
        const x = numericValue(v);
        return !Number.isNaN(x) ? x > n : s !== null && v > s;
      };
    default:
      return (c) => {
        const v = get(c);
        if (typeof v === 'number') return v >= n;
        if (typeof v !== 'string') return false;
        const x = numericValue(v);
        return !Number.isNaN(x) ? x >= n : s !== null && v >= s;
      };
  }
}

export function orderWithString(get: Get, op: CompareOp, s: string): Test {
  switch (op) {
    case '<':
      return (c) => {
        const v = get(c);
        return typeof v === 'string' && v < s;
      };
    case '<=':
      return (c) => {
        const v = get(c);
        return typeof v === 'string' && v <= s;
      };
    case '>':
      return (c) => {
        const v = get(c);
        return typeof v === 'string' && v > s;
      };
    default:
      return (c) => {
        const v = get(c);
        return typeof v === 'string' && v >= s;
      };
  }
}

/** `key OP "literal"` for one property: read without the own-check, which confirms a match only. */
export function textWithLiteral(op: TextOp, k: string, literal: string): Test {
  if (op === '^=' || op === '^!=') {
    return (c) => {
      const v = c[k];
      const t =
        typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
      return t?.startsWith(literal) === true && own(c, k);
    };
  }
  if (op === '$=' || op === '$!=') {
    return (c) => {
      const v = c[k];
      const t =
        typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
      return t?.endsWith(literal) === true && own(c, k);
    };
  }
  return (c) => {
    const v = c[k];
    const t = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
    return t?.includes(literal) === true && own(c, k);
  };
}
