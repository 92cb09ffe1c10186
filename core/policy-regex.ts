/**
 * Regular expressions of the policy language (`=~`, `!~`), run on RE2 (the `re2js` port: linear time,
 * no backtracking) with a cost bound checked when the policy is parsed.
 *
 * Linear is not cheap enough by itself: re2js's work per input character grows with the compiled
 * program (`[a-z]{0,1000}` three times over: 6,003 instructions, ~90 ms on a 1 KiB string). So a
 * pattern is refused unless its program has at most {@link REGEX_LIMITS}.maxProgramSize instructions,
 * and each compiled pattern's lazy DFA gets a small memory budget: a pattern whose DFA keeps growing
 * (`[ab]*a[ab]{20}$`) makes re2js fall back to its NFA after a bounded amount of DFA building instead
 * of building a new state for every character. Together these keep the worst case of every accepted
 * pattern against the longest value a device can send (1,024 UTF-16 code units, DESIGN §2) under
 * 1 ms on the dev machine; bench `policy-regex-worst` measures it on a hostile corpus.
 *
 * A plain literal (`X1-pro`, `^1\\.2\\.`) runs on V8's RegExp instead: it has no choice to backtrack into.
 *
 * Meaning is JavaScript's (flags i, m, s; no u), kept exactly by translation rather than left to RE2:
 * policy-regex-syntax.ts parses the pattern into explicit UTF-16 code-unit sets; under `i` both the sets
 * and the input are case-canonicalised as JavaScript does (so RE2's Unicode case folding never applies);
 * under `m` the input's `\r`, U+2028 and U+2029 become `\n`, the only line end RE2 knows, and a set that
 * tells line ends apart is refused. One difference is left: RE2 reads a surrogate pair as one character,
 * so `.` or `[^a]` consume an emoji whole where JavaScript sees two code units.
 */

import { RE2JS } from 're2js';
import {
  canonicalize,
  complement,
  inRanges,
  normalize,
  type Ranges,
  RegexParser,
  RegexRejection,
  type RNode,
  resolveDots,
} from './policy-regex-syntax.ts';

export { RegexRejection };

export const REGEX_LIMITS = {
  /** Instructions of the RE2 program (re2js `programSize()`); see the module comment. */
  maxProgramSize: 64,
  /** Longest value a device can send (DESIGN §2); the budget holds up to this length. */
  maxInputLength: 1024,
  /** Memory for the lazy DFA's states per pattern (re2js's default is 8 MiB). */
  dfaMemoryBytes: 16 * 1024,
  /** What all regexes of one policy may cost together, in steps (see {@link regexCost}). */
  maxPolicyCost: 192,
} as const;

/**
 * The bound above is per pattern; a policy of 1,000 characters held 20 worst-case patterns (18 ms per
 * evaluation in bench `policy-regex-policy-worst`). So each regex also has a cost class, in the steps
 * of its program, and a policy's regexes share the 1 ms evaluation budget. Measured with bench
 * `policy-regex-worst` (1 KiB strings, cold DFA, the shared 2-core machine): an accepted RE2 pattern
 * costs up to ~200 µs plus ~5 µs per instruction, since a small program whose DFA keeps growing rebuilds
 * states for every character (a 9-instruction class of 60 ranges: 200–250 µs; 59 instructions: 450 µs)
 * and `i` case-folds non-ASCII input first (~40 µs); a plain literal on V8 takes ≤ 14 µs. At ~5 µs a
 * step, an RE2 pattern costs 48 + its program size and a literal 3; 192 steps (~1 ms) admit one
 * worst-case pattern and one of ≤ 32 instructions, or three small DFA-heavy ones. The slowest accepted
 * policy of the bench's hostile set then takes ~0.75 ms (with a base of 32, four regexes took 0.99 ms).
 */
const LINEAR_BASE_COST = 48;
const NATIVE_COST = 3;

/** The cost class of one compiled regex in steps, counted against {@link REGEX_LIMITS}.maxPolicyCost. */
export function regexCost(regex: SafeRegex): number {
  return regex.engine === 'native' ? NATIVE_COST : LINEAR_BASE_COST + regex.programSize;
}

/** The steps of one policy's regexes so far; refuses the regex that takes them over the budget. */
export class PolicyRegexBudget {
  private total = 0;

  /** Adds `regex`; returns the one-line reason to refuse it when the policy goes over the budget. */
  charge(regex: SafeRegex): string | undefined {
    this.total += regexCost(regex);
    if (this.total <= REGEX_LIMITS.maxPolicyCost) return undefined;
    return (
      `Regexes too complex together: with this one the policy's regexes cost ${this.total} steps, the limit is ` +
      `${REGEX_LIMITS.maxPolicyCost} (1 ms per evaluation; a regex costs ${LINEAR_BASE_COST} plus its ` +
      `compiled steps, a plain literal ${NATIVE_COST}); use fewer or simpler regexes`
    );
  }
}

export interface SafeRegex {
  readonly source: string;
  readonly flags: string;
  /** `native` (V8) for a plain literal, which cannot backtrack; RE2 for everything else. */
  readonly engine: 'native' | 'linear';
  /** Instructions of the compiled program, at most {@link REGEX_LIMITS}.maxProgramSize. */
  readonly programSize: number;
  test(input: string): boolean;
}

const ALLOWED_FLAGS = 'ims';

/** Parses, bounds and compiles a policy regex; throws {@link RegexRejection} with a one-line reason. */
export function compileSafeRegex(source: string, flags: string): SafeRegex {
  checkFlags(flags);
  const ignoreCase = flags.includes('i');
  const multiline = flags.includes('m');
  const tree = resolveDots(new RegexParser(source).parse(), flags.includes('s'));
  let native: RegExp;
  try {
    native = new RegExp(source, flags);
  } catch (e) {
    throw new RegexRejection((e as Error).message, 0);
  }
  if (isPlainLiteral(tree)) {
    return { source, flags, engine: 'native', programSize: 0, test: (input) => native.test(input) };
  }
  const estimate = expandedSize(tree);
  if (estimate > REGEX_LIMITS.maxProgramSize * 4)
    throw tooCostly(`about ${estimate.toLocaleString('en-US')}`);
  const re2 = compileRe2(toRe2Syntax(tree, { ignoreCase, multiline }), multiline);
  const programSize = re2.programSize();
  if (programSize > REGEX_LIMITS.maxProgramSize) throw tooCostly(String(programSize));
  limitDfaMemory(re2);
  const prepare = inputPreparation(ignoreCase, multiline);
  return { source, flags, engine: 'linear', programSize, test: (input) => re2.test(prepare(input)) };
}

function checkFlags(flags: string): void {
  for (const [k, f] of [...flags].entries()) {
    if (f === 'g' || f === 'y')
      throw new RegexRejection(`Regex flag "${f}" is not allowed (a policy tests one value)`, -1);
    if (!ALLOWED_FLAGS.includes(f))
      throw new RegexRejection(`Unsupported regex flag "${f}" (use i, m or s)`, -1);
    if (flags.indexOf(f) !== k) throw new RegexRejection(`Duplicate regex flag "${f}"`, -1);
  }
}

function tooCostly(steps: string): RegexRejection {
  return new RegexRejection(
    `Regex too complex: it compiles to ${steps} steps, the limit is ${REGEX_LIMITS.maxProgramSize} ` +
      '(1 ms per 1 KiB device value); use smaller repeat counts or fewer alternatives',
    0,
  );
}

function compileRe2(syntax: string, multiline: boolean): RE2JS {
  try {
    return RE2JS.compile(syntax, multiline ? RE2JS.MULTILINE : 0);
  } catch (e) {
    // The translation only emits syntax RE2 accepts; what is left is RE2's own size limits.
    throw new RegexRejection(`Regex not supported: ${(e as Error).message}`, 0);
  }
}

/**
 * The lazy DFA of re2js 2.10 (`RE2.dfa`): its memory budget is plain fields, reset on each cache clear.
 * Not public API, hence re2js pinned to 2.10.0 in package.json and the check below.
 */
interface Re2Dfa {
  stateBudget: number;
  memBudget: number;
}

function limitDfaMemory(re2: RE2JS): void {
  const dfa = (re2.re2() as unknown as { dfa?: Re2Dfa }).dfa;
  if (typeof dfa?.stateBudget !== 'number' || typeof dfa.memBudget !== 'number') {
    // A re2js upgrade moved the knob: fail loudly rather than run without the bound.
    throw new Error('re2js internals changed: cannot bound the DFA memory of policy regexes');
  }
  dfa.stateBudget = REGEX_LIMITS.dfaMemoryBytes;
  dfa.memBudget = REGEX_LIMITS.dfaMemoryBytes;
}

/**
 * `abc`, `^abc`, `abc$`: V8 scans for a literal without backtracking into earlier choices (there are none),
 * at most input × literal steps, and keeps JavaScript's semantics exactly. RE2 would count each
 * character as an instruction and refuse a long literal it runs cheaply anyway.
 */
function isPlainLiteral(tree: RNode): boolean {
  const items = tree.t === 'seq' ? tree.items : [tree];
  return items.every((item, k) => {
    if (item.t === 'assert') {
      return (item.kind === 'start' && k === 0) || (item.kind === 'end' && k === items.length - 1);
    }
    return (
      item.t === 'set' &&
      item.negate !== true &&
      item.ranges.length === 2 &&
      item.ranges[0] === item.ranges[1]
    );
  });
}

/** An upper estimate of the program size from the tree, to refuse `x{1000}{1000}` before compiling it. */
function expandedSize(node: RNode): number {
  switch (node.t) {
    case 'set':
    case 'dot':
    case 'assert':
      return 1;
    case 'seq':
      return node.items.reduce((n, item) => n + expandedSize(item), 0);
    case 'alt':
      return node.alts.reduce((n, alt) => n + expandedSize(alt) + 1, 0);
    case 'repeat': {
      const copies = node.max === Number.POSITIVE_INFINITY ? node.min + 1 : node.max;
      return Math.max(1, copies) * (expandedSize(node.node) + 1);
    }
  }
}

// ---------------------------------------------------------------- input

const NON_ASCII = /[\u0080-\uffff]/;
const OTHER_LINE_ENDS = /[\r\u2028\u2029]/g;

function inputPreparation(ignoreCase: boolean, multiline: boolean): (input: string) => string {
  if (ignoreCase && multiline) return (input) => canonicalInput(input).replace(OTHER_LINE_ENDS, '\n');
  if (ignoreCase) return canonicalInput;
  if (multiline) return (input) => input.replace(OTHER_LINE_ENDS, '\n');
  return (input) => input;
}

/** Each code unit replaced by its case canonical form; the `i` sets below hold canonical forms too. */
export function canonicalInput(input: string): string {
  if (!NON_ASCII.test(input)) return input.toUpperCase();
  const codes = new Uint16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    codes[i] = c < 0x80 ? (c >= 0x61 && c <= 0x7a ? c - 0x20 : c) : canonicalize(c);
  }
  // Not TextDecoder: it would replace a lone surrogate, which a device may send, with U+FFFD.
  let out = '';
  for (let i = 0; i < codes.length; i += 4096) {
    out += String.fromCharCode.apply(null, codes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

// ---------------------------------------------------------------- translation to RE2 syntax

interface Mode {
  readonly ignoreCase: boolean;
  readonly multiline: boolean;
}

function toRe2Syntax(node: RNode, mode: Mode): string {
  switch (node.t) {
    case 'set':
      return re2Class(setRanges(node.ranges, node.negate === true, mode));
    case 'dot':
      throw new Error('unresolved "." in regex tree');
    case 'seq':
      return node.items.map((item) => toRe2Syntax(item, mode)).join('');
    case 'alt':
      return `(?:${node.alts.map((alt) => toRe2Syntax(alt, mode)).join('|')})`;
    case 'repeat':
      return `(?:${toRe2Syntax(node.node, mode)})${quantifier(node.min, node.max)}`;
    case 'assert':
      return { start: '^', end: '$', word: '\\b', nonword: '\\B' }[node.kind];
  }
}

function quantifier(min: number, max: number): string {
  if (max !== Number.POSITIVE_INFINITY) return `{${min},${max}}`;
  if (min === 0) return '*';
  if (min === 1) return '+';
  return `{${min},}`;
}

/** The code units a set matches in the prepared input (canonical under `i`, `\n` for line ends under `m`). */
function setRanges(ranges: Ranges, negate: boolean, mode: Mode): Ranges {
  let members = mode.ignoreCase ? caseClosure(ranges) : ranges;
  if (negate) members = complement(members);
  if (mode.multiline) {
    const ends = [0x0a, 0x0d, 0x2028, 0x2029].filter((c) => inRanges(members, c)).length;
    if (ends !== 0 && ends !== 4) {
      throw new RegexRejection(
        'Under the m flag a set must match \\n, \\r, \\u2028 and \\u2029 together (all are line ends); use \\s or [^\\n\\r\\u2028\\u2029]',
        0,
      );
    }
  }
  return members;
}

const SURROGATE_PAIR_START = [0xd800, 0xdbff];

/** RE2 reads a surrogate pair as one code point: a set taking every high surrogate takes those too. */
function re2Class(ranges: Ranges): string {
  if (ranges.length === 0) return '[^\\x{0}-\\x{10FFFF}]';
  const hex = (c: number) => `\\x{${c.toString(16)}}`;
  let body = '';
  for (let i = 0; i < ranges.length; i += 2) {
    const lo = ranges[i]!;
    const hi = ranges[i + 1]!;
    body += lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`;
  }
  const [pairLo, pairHi] = SURROGATE_PAIR_START as [number, number];
  if (ranges.some((lo, i) => i % 2 === 0 && lo <= pairLo && ranges[i + 1]! >= pairHi)) {
    body += '\\x{10000}-\\x{10FFFF}';
  }
  return `[${body}]`;
}

/**
 * Under `i` JavaScript matches a character x against a set S when canonicalize(x) is canonicalize(c) for
 * some c in S. The input is canonicalised, so the set becomes S ∪ canonicalize(S). A small set (a letter,
 * `[a-z]`) is enumerated; a large one (`.`, `\W`, `[\s\S]`) is its complement's reverse: a code unit
 * missing from S joins when a lower-case form of it is in S. Large sets repeat (`.` in most patterns),
 * so their closures are kept, few as they are.
 */
function caseClosure(ranges: Ranges): Ranges {
  let size = 0;
  for (let i = 0; i < ranges.length; i += 2) size += ranges[i + 1]! - ranges[i]! + 1;
  if (size <= SMALL_SET) {
    const out = [...ranges];
    for (let i = 0; i < ranges.length; i += 2) {
      for (let c = ranges[i]!; c <= ranges[i + 1]!; c++) {
        const canonical = canonicalize(c);
        if (canonical !== c) out.push(canonical, canonical);
      }
    }
    return normalize(out);
  }
  const key = ranges.join(',');
  let closure = largeClosures.get(key);
  if (!closure) {
    closure = largeCaseClosure(ranges);
    if (largeClosures.size >= 64) largeClosures.clear();
    largeClosures.set(key, closure);
  }
  return closure;
}

const SMALL_SET = 0x2000;
const largeClosures = new Map<string, Ranges>();

function largeCaseClosure(ranges: Ranges): Ranges {
  const added: Ranges = [];
  const missing = complement(ranges);
  for (let i = 0; i < missing.length; i += 2) {
    for (let y = missing[i]!; y <= missing[i + 1]!; y++) {
      const lower = String.fromCharCode(y).toLowerCase();
      const c = lower.length === 1 ? lower.charCodeAt(0) : -1;
      if (c >= 0 && inRanges(ranges, c) && canonicalize(c) === y) added.push(y, y);
    }
  }
  return normalize([...ranges, ...added]);
}
