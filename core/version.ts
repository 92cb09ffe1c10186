/**
 * Strict SemVer 2.0 (https://semver.org): versions, precedence and the policy evaluation context.
 *
 * "Strict" means exactly the grammar of the specification: no leading `v` or `=`, no surrounding
 * whitespace, no leading zeros in numeric parts, no partial forms such as `1.2`. The `semver` package
 * accepts all of those, so it is not used here (tests use it as the reference for ordering).
 * Two extra bounds keep arithmetic exact: at most 256 characters (the `semver` package's limit) and
 * major/minor/patch at most Number.MAX_SAFE_INTEGER. Numeric prerelease identifiers of any length
 * compare exactly (by length, then digits), since they cannot have leading zeros.
 */
import { ValidationError } from './errors.ts';
import { safeObject } from './safe-object.ts';
import type { DeviceCheckin } from './types.ts';

export interface ParsedVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** Dot-separated prerelease identifiers, '' if none. */
  readonly prerelease: string;
  /** Build metadata, '' if none. Ignored by precedence. */
  readonly build: string;
  readonly raw: string;
}

const MAX_VERSION_LENGTH = 256;

// The regular expression published on semver.org, with capture groups.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const NUMERIC = /^\d+$/;

interface Entry {
  readonly parsed: ParsedVersion;
  /** Prerelease identifiers; empty for a release. */
  readonly ids: readonly string[];
  readonly numericIds: readonly boolean[];
}

/**
 * Versions repeat heavily on the checkin path (a fleet runs few versions, a product has few updates), so
 * parses are memoised. The bound keeps hostile input from growing it; clearing is cheaper than LRU
 * bookkeeping and a refill costs one regex per version.
 */
const CACHE_LIMIT = 4096;
const cache = new Map<string, Entry>();

function lookup(v: string): Entry | undefined {
  const hit = cache.get(v);
  if (hit) return hit;
  if (v.length > MAX_VERSION_LENGTH) return undefined;
  const m = SEMVER.exec(v);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const patch = Number(m[3]);
  if (major > Number.MAX_SAFE_INTEGER || minor > Number.MAX_SAFE_INTEGER || patch > Number.MAX_SAFE_INTEGER) {
    return undefined;
  }
  const prerelease = m[4] ?? '';
  const ids = prerelease === '' ? [] : prerelease.split('.');
  const entry: Entry = {
    parsed: Object.freeze({ major, minor, patch, prerelease, build: m[5] ?? '', raw: v }),
    ids,
    numericIds: ids.map((id) => NUMERIC.test(id)),
  };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(v, entry);
  return entry;
}

/** Client input echoed in an error message: JSON-quoted (so it stays on one line) and cut to 60 characters. */
export function quoteInput(value: unknown): string {
  let text: string;
  if (typeof value === 'string') {
    text = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return JSON.stringify(text);
  }
  text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function entryOf(v: string, what: string): Entry {
  const entry = typeof v === 'string' ? lookup(v) : undefined;
  if (!entry) throw new ValidationError(`Invalid ${what} ${quoteInput(v)}: not SemVer 2.0`);
  return entry;
}

export function isSemver(v: string): boolean {
  return typeof v === 'string' && lookup(v) !== undefined;
}

/** Throws ValidationError `Invalid version "1.2": not SemVer 2.0`; `what` replaces the word "version". */
export function parseVersion(v: string, what = 'version'): ParsedVersion {
  return entryOf(v, what).parsed;
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareEntries(a: Entry, b: Entry): number {
  const pa = a.parsed;
  const pb = b.parsed;
  const core =
    compareNumbers(pa.major, pb.major) ||
    compareNumbers(pa.minor, pb.minor) ||
    compareNumbers(pa.patch, pb.patch);
  if (core !== 0) return core;
  const ia = a.ids;
  const ib = b.ids;
  // A release outranks any prerelease of the same major.minor.patch.
  if (ia.length === 0 || ib.length === 0) return compareNumbers(ib.length, ia.length);
  const n = Math.min(ia.length, ib.length);
  for (let i = 0; i < n; i++) {
    const x = ia[i]!;
    const y = ib[i]!;
    if (x === y) continue;
    const xNum = a.numericIds[i]!;
    const yNum = b.numericIds[i]!;
    if (xNum && yNum) return compareNumbers(x.length, y.length) || (x < y ? -1 : 1);
    if (xNum) return -1;
    if (yNum) return 1;
    return x < y ? -1 : 1;
  }
  return compareNumbers(ia.length, ib.length);
}

/** SemVer 2.0 precedence: negative if a < b, 0 if equal precedence (build metadata ignored), positive if a > b. */
export function compareVersions(a: string, b: string): number {
  return compareEntries(entryOf(a, 'version'), entryOf(b, 'version'));
}

export function samePrecedence(a: string, b: string): boolean {
  return compareVersions(a, b) === 0;
}

/** Stable sort, highest precedence first: the order in which selection walks a product's updates. */
export function sortByVersionDescending<T extends { readonly version: string }>(items: readonly T[]): T[] {
  const decorated = items.map((item) => ({ item, entry: entryOf(item.version, 'version') }));
  // Array.prototype.sort is stable (ES2019), so equal precedence keeps input order.
  decorated.sort((x, y) => compareEntries(y.entry, x.entry));
  return decorated.map((d) => d.item);
}

/** The version without build metadata: two versions have the same precedence iff their keys are equal. */
export function precedenceKey(v: string): string {
  const { parsed } = entryOf(v, 'version');
  const plus = parsed.raw.indexOf('+');
  return plus < 0 ? parsed.raw : parsed.raw.slice(0, plus);
}

/**
 * The policy evaluation context (DESIGN §3): every property of the checkin body, then the derived
 * `version`, `major`, `minor`, `patch`, `prerelease` (which win over body properties of the same name)
 * and `newVersion` (null until the caller sets it per update). Built with `safeObject`, so no
 * inherited name (`constructor`, `toString`, …) resolves to anything, nested objects included.
 */
export function deviceContext(device: DeviceCheckin): Record<string, unknown> {
  const { parsed } = entryOf(device.version, 'version');
  // safeObject, not Object.create(null): V8 keeps null-prototype objects in slow dictionary mode
  // (a simple policy evaluated ~8x slower on one); its frozen, key-less prototype is as safe.
  const ctx = safeObject(device.body);
  ctx.version = device.version;
  ctx.major = parsed.major;
  ctx.minor = parsed.minor;
  ctx.patch = parsed.patch;
  ctx.prerelease = parsed.prerelease;
  ctx.newVersion = null;
  return ctx;
}
