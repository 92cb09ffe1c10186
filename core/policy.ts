/**
 * The distribution policy language of DESIGN §3: `compilePolicy(source)` parses (jsep, private grammar),
 * validates and compiles a policy once; `evaluate(context)` then decides whether a device gets an update.
 *
 * Semantics in brief (the tests hold the full table):
 * - Names read the device's own properties (`hw.rev` for nested ones); unknown names and members of
 *   null or of non-objects are null. `null` equals only `null`; ordering with null is false.
 * - Numbers and numeric strings compare numerically; "true"/"false" equal true/false; other strings
 *   compare by code unit; other mixed types are unequal and unordered.
 * - Arithmetic takes numbers and numeric strings; anything else, or a non-finite result, fails the
 *   evaluation (`evaluate` returns null: no match, a PolicyErrors metric). A null result would equal
 *   every missing property. `warnings` names arithmetic that can never succeed.
 * - In a boolean context (`&& || ! ?:` and the whole policy) values are truthy as in JavaScript, except
 *   that the strings "false" and "0" are false.
 * - Text operators (`^= $= ><` and negations) see numbers and booleans as their strings; a negated
 *   operator is exactly the negation of its positive one.
 * - Regexes are checked at parse time and run on a backtracking-safe engine (see policy-regex.ts).
 * - semver()/satisfies() on a non-null value that is not a version make a non-match an evaluation
 *   error (`evaluate` returns null), so broken device data shows up in the PolicyErrors metric.
 *
 * Evaluation runs the validated tree compiled once into closures (policy-interpret.ts); no code is
 * generated from strings (DESIGN §3: one engine).
 */
import parseSemver from 'semver/functions/parse.js';
import { explainPolicy } from './policy-explain.ts';
import { interpretPolicy } from './policy-interpret.ts';
import { parsePolicy } from './policy-parse.ts';
import type { PolicyContext } from './policy-values.ts';
import { type PolicyWarning, policyWarnings } from './policy-warnings.ts';
import { safeObject } from './safe-object.ts';
import type { DeviceObject } from './types.ts';

export { POLICY_LIMITS } from './policy-parse.ts';
export type { PolicyContext } from './policy-values.ts';
export type { PolicyWarning } from './policy-warnings.ts';
export { safeObject } from './safe-object.ts';

export interface CompiledPolicy {
  readonly source: string;
  /** Number of terms: each name (a member chain counts once), literal, array element, regex and call. */
  readonly terms: number;
  /**
   * Never throws. true = match, false = no match, null = evaluation error (treated as no match; the caller
   * counts a PolicyErrors metric). An error is a non-match that met a value semver()/satisfies() could not
   * read as a version, arithmetic on something that is not a finite number, or an internal failure.
   */
  evaluate(context: PolicyContext): boolean | null;
  /** Human explanation of the parse as an indented tree, for `updraft policy check`. */
  explain(): string;
  /** What compiles but always fails where evaluated (see policy-warnings.ts), for check and publish. */
  readonly warnings: readonly PolicyWarning[];
}

export const DEFAULT_POLICY = 'semver(version, "<", newVersion)';

const CACHE_LIMIT = 1000;
const cache = new Map<string, CompiledPolicy>();

/**
 * Parses and compiles; throws PolicyError (reason, 1-based column, caret excerpt). Cached by source.
 * '' or whitespace-only → the default policy `semver(version, "<", newVersion)`.
 */
export function compilePolicy(source: string): CompiledPolicy {
  const effective = source.trim() === '' ? DEFAULT_POLICY : source;
  const cached = cache.get(effective);
  if (cached) return cached;
  const { root, terms } = parsePolicy(effective);
  const policy: CompiledPolicy = {
    source: effective,
    terms,
    evaluate: interpretPolicy(root),
    explain: () => explainPolicy(root, effective === DEFAULT_POLICY),
    warnings: policyWarnings(root),
  };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(effective, policy);
  return policy;
}

/**
 * The context a policy sees for one device and one update: the checkin properties plus `version`,
 * `major`, `minor`, `patch`, `prerelease` ('' if none, else the dot-joined identifiers) and `newVersion`.
 * Build contexts with this rather than by hand: the copy it makes is read without per-property
 * `Object.hasOwn` checks (any plain object works too, only slower).
 */
export function policyContext(
  body: Readonly<DeviceObject>,
  version: string,
  newVersion: string,
): PolicyContext {
  const parsed = parseSemver(version);
  return safeObject({
    ...body,
    version,
    major: parsed?.major ?? null,
    minor: parsed?.minor ?? null,
    patch: parsed?.patch ?? null,
    prerelease: parsed ? parsed.prerelease.join('.') : null,
    newVersion,
  });
}
