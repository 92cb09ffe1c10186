/**
 * Regular expressions of the policy language (`=~`, `!~`), made safe against catastrophic backtracking.
 *
 * A policy regex runs against device-supplied strings (up to 1 KiB each), so a pattern like `(a+)+$` must
 * not be able to stall a checkin. Rather than rejecting every pattern with two quantifiers, each pattern
 * is parsed here (a strict subset of JavaScript regex syntax: no backreferences, no lookaround, no `u`)
 * and then run by one of two engines:
 * - `native`: the JavaScript RegExp, used only when a bound on its backtracking work is small
 *   (no quantifier over a quantifier or an alternation, and the product of the repetition counts of the
 *   quantifiers is bounded for inputs up to {@link NATIVE_MAX_INPUT} code units);
 * - `linear`: a Thompson NFA simulation, O(input × pattern) whatever the pattern, used for every other
 *   pattern and for any input longer than {@link NATIVE_MAX_INPUT}.
 * Both engines give the same answers (the unit tests cross-check them on random patterns and inputs).
 */

/** A pattern rejected at parse time; `offset` is 0-based within the pattern source. */
export class RegexRejection extends Error {
  override readonly name = 'RegexRejection';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(reason);
  }
}

export interface SafeRegex {
  readonly source: string;
  readonly flags: string;
  /** Which engine runs inputs of up to {@link NATIVE_MAX_INPUT} code units. */
  readonly engine: 'native' | 'linear';
  test(input: string): boolean;
}

/** Inputs longer than this always run on the linear engine. Device strings are at most 1 KiB. */
export const NATIVE_MAX_INPUT = 1024;
/** Upper bound on the backtracking work (paths × pattern nodes) the native engine may face. */
const NATIVE_BUDGET = 10_000_000;
/** Instructions of the linear engine's program: bounds `x{1000}`-style expansions. */
const MAX_PROGRAM = 10_000;
const MAX_REPEAT = 1000;

// ---------------------------------------------------------------- character sets

/** A set of UTF-16 code units as sorted, disjoint, inclusive [lo, hi] pairs. */
type Ranges = number[];

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
const SPACE: Ranges = [
  0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f,
  0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff,
];
const LINE_TERMINATORS: Ranges = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];

function normalize(ranges: Ranges): Ranges {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last]! + 1) out[last] = Math.max(out[last]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(ranges: Ranges): Ranges {
  const sorted = normalize(ranges);
  const out: Ranges = [];
  let next = 0;
  for (let i = 0; i < sorted.length; i += 2) {
    if (sorted[i]! > next) out.push(next, sorted[i]! - 1);
    next = sorted[i + 1]! + 1;
  }
  if (next <= 0xffff) out.push(next, 0xffff);
  return out;
}

function inRanges(ranges: Ranges, code: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (code < ranges[i]!) return false;
    if (code <= ranges[i + 1]!) return true;
  }
  return false;
}

/** JavaScript's non-unicode case canonicalisation (ECMA-262 Canonicalize with rer.[[IgnoreCase]], no u). */
function canonicalize(code: number): number {
  const upper = String.fromCharCode(code).toUpperCase();
  if (upper.length !== 1) return code;
  const cu = upper.charCodeAt(0);
  return code >= 128 && cu < 128 ? code : cu;
}

let caseClasses: Map<number, number[]> | undefined;
/** Code units sharing a canonical form, built once on first use of an `i` pattern by the linear engine. */
function sameCase(code: number): number[] {
  if (!caseClasses) {
    caseClasses = new Map();
    for (let c = 0; c <= 0xffff; c++) {
      const k = canonicalize(c);
      const list = caseClasses.get(k);
      if (list) list.push(c);
      else caseClasses.set(k, [c]);
    }
  }
  return caseClasses.get(canonicalize(code)) ?? [code];
}

/** A compiled matcher for one character position: an ASCII table plus ranges for the rest. */
class CharMatcher {
  private readonly ascii = new Uint8Array(128);
  constructor(
    private readonly ranges: Ranges,
    private readonly negate: boolean,
    private readonly ignoreCase: boolean,
  ) {
    for (let c = 0; c < 128; c++) this.ascii[c] = this.slowTest(c) ? 1 : 0;
  }
  private slowTest(code: number): boolean {
    return this.member(code) !== this.negate;
  }
  private member(code: number): boolean {
    if (!this.ignoreCase) return inRanges(this.ranges, code);
    for (const c of sameCase(code)) if (inRanges(this.ranges, c)) return true;
    return false;
  }
  test(code: number): boolean {
    return code < 128 ? this.ascii[code] === 1 : this.slowTest(code);
  }
}

// ---------------------------------------------------------------- syntax

type RNode =
  /** `negate` applies after case folding, as in JavaScript: `/[^a]/i` does not match "A". */
  | { readonly t: 'set'; readonly ranges: Ranges; readonly negate?: boolean }
  | { readonly t: 'dot' }
  | { readonly t: 'seq'; readonly items: RNode[] }
  | { readonly t: 'alt'; readonly alts: RNode[] }
  | { readonly t: 'repeat'; readonly node: RNode; readonly min: number; readonly max: number }
  | { readonly t: 'assert'; readonly kind: 'start' | 'end' | 'word' | 'nonword' };

const SYNTAX_CHARS = '^$\\.*+?()[]{}|/-';

class RegexParser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): RNode {
    const node = this.alternation();
    if (this.i < this.src.length) this.fail(`Unexpected "${this.src[this.i]}" in regex`);
    return node;
  }

  private fail(reason: string, at = this.i): never {
    throw new RegexRejection(reason, at);
  }

  private alternation(): RNode {
    const alts = [this.sequence()];
    while (this.src[this.i] === '|') {
      this.i++;
      alts.push(this.sequence());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  private sequence(): RNode {
    const items: RNode[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      items.push(this.quantifier(this.atom()));
    }
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  }

  private quantifier(atom: RNode): RNode {
    const ch = this.src[this.i];
    let min: number;
    let max: number;
    const at = this.i;
    if (ch === '*') [min, max] = [0, Number.POSITIVE_INFINITY];
    else if (ch === '+') [min, max] = [1, Number.POSITIVE_INFINITY];
    else if (ch === '?') [min, max] = [0, 1];
    else if (ch === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) this.fail('Escape "{" as "\\{" in regex');
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      if (min > MAX_REPEAT || (max !== Number.POSITIVE_INFINITY && max > MAX_REPEAT)) {
        this.fail(`Regex repeat count above ${MAX_REPEAT}`);
      }
      if (max < min) this.fail('Regex repeat range out of order');
      this.i += m[0].length - 1;
    } else return atom;
    if (atom.t === 'assert') this.fail('Nothing to repeat in regex', at);
    this.i++;
    if (this.src[this.i] === '?') this.i++; // lazy: same answer for a yes/no test
    const next = this.src[this.i];
    if (next === '*' || next === '+' || next === '?' || next === '{') this.fail('Nothing to repeat in regex');
    return { t: 'repeat', node: atom, min, max };
  }

  private atom(): RNode {
    const ch = this.src[this.i]!;
    switch (ch) {
      case '^':
        this.i++;
        return { t: 'assert', kind: 'start' };
      case '$':
        this.i++;
        return { t: 'assert', kind: 'end' };
      case '.':
        this.i++;
        return { t: 'dot' };
      case '(':
        return this.group();
      case '[':
        return this.charClass();
      case '\\':
        return this.escape(false);
      case '*':
      case '+':
      case '?':
        return this.fail('Nothing to repeat in regex');
      case '{':
      case '}':
      case ']':
        return this.fail(`Escape "${ch}" as "\\${ch}" in regex`);
      default:
        this.i++;
        return literal(ch.charCodeAt(0));
    }
  }

  private group(): RNode {
    const start = this.i;
    this.i++;
    if (this.src[this.i] === '?') {
      const rest = this.src.slice(this.i, this.i + 3);
      if (rest.startsWith('?:')) this.i += 2;
      else if (rest === '?<=' || rest === '?<!' || rest.startsWith('?=') || rest.startsWith('?!')) {
        this.fail('Lookaround is not supported in policy regexes', start);
      } else if (rest.startsWith('?<')) {
        const m = /^\?<([A-Za-z_$][A-Za-z0-9_$]*)>/.exec(this.src.slice(this.i));
        if (!m) this.fail('Invalid group name in regex');
        this.i += m[0].length;
      } else this.fail('Unsupported group syntax in regex', start);
    }
    const inner = this.alternation();
    if (this.src[this.i] !== ')') this.fail('Unclosed "(" in regex', start);
    this.i++;
    // A group may be quantified even when it holds only an assertion: `(?:\b)*` is valid, `\b*` is not.
    return inner.t === 'assert' ? { t: 'seq', items: [inner] } : inner;
  }

  private charClass(): RNode {
    const start = this.i;
    this.i++;
    let negate = false;
    if (this.src[this.i] === '^') {
      negate = true;
      this.i++;
    }
    const ranges: Ranges = [];
    while (this.i < this.src.length && this.src[this.i] !== ']') {
      const lo = this.classAtom();
      if (this.src[this.i] === '-' && this.i + 1 < this.src.length && this.src[this.i + 1] !== ']') {
        const dash = this.i;
        this.i++;
        const hi = this.classAtom();
        if (lo.single === undefined || hi.single === undefined)
          this.fail('Invalid range in regex class', dash);
        if (hi.single < lo.single) this.fail('Regex class range out of order', dash);
        ranges.push(lo.single, hi.single);
      } else ranges.push(...lo.ranges);
    }
    if (this.src[this.i] !== ']') this.fail('Unclosed "[" in regex', start);
    this.i++;
    return { t: 'set', ranges: normalize(ranges), negate };
  }

  private classAtom(): { ranges: Ranges; single?: number } {
    const ch = this.src[this.i]!;
    if (ch === '\\') {
      const node = this.escape(true);
      if (node.t !== 'set') return this.fail('Unsupported escape in regex class');
      const r = node.ranges;
      return r.length === 2 && r[0] === r[1] ? { ranges: r, single: r[0]! } : { ranges: r };
    }
    this.i++;
    const code = ch.charCodeAt(0);
    return { ranges: [code, code], single: code };
  }

  private escape(inClass: boolean): RNode {
    const start = this.i;
    this.i++;
    const ch = this.src[this.i];
    if (ch === undefined) return this.fail('Regex ends with "\\"', start);
    this.i++;
    switch (ch) {
      case 'd':
        return { t: 'set', ranges: DIGIT };
      case 'D':
        return { t: 'set', ranges: complement(DIGIT) };
      case 'w':
        return { t: 'set', ranges: WORD };
      case 'W':
        return { t: 'set', ranges: complement(WORD) };
      case 's':
        return { t: 'set', ranges: SPACE };
      case 'S':
        return { t: 'set', ranges: complement(SPACE) };
      case 'b':
        return inClass ? literal(8) : { t: 'assert', kind: 'word' };
      case 'B':
        if (inClass) return this.fail('Unsupported escape "\\B" in regex class', start);
        return { t: 'assert', kind: 'nonword' };
      case 't':
        return literal(9);
      case 'n':
        return literal(10);
      case 'v':
        return literal(11);
      case 'f':
        return literal(12);
      case 'r':
        return literal(13);
      case '0':
        if (/[0-9]/.test(this.src[this.i] ?? ''))
          return this.fail('Octal escapes are not supported in regex', start);
        return literal(0);
      case 'x':
      case 'u': {
        const len = ch === 'x' ? 2 : 4;
        const hex = this.src.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9A-Fa-f]{${len}}$`).test(hex))
          return this.fail(`Invalid "\\${ch}" escape in regex`, start);
        this.i += len;
        return literal(Number.parseInt(hex, 16));
      }
      case 'c': {
        const letter = this.src[this.i] ?? '';
        if (!/[A-Za-z]/.test(letter)) return this.fail('Invalid "\\c" escape in regex', start);
        this.i++;
        return literal(letter.charCodeAt(0) % 32);
      }
      default:
        if (/[1-9]/.test(ch)) return this.fail('Backreferences are not supported in policy regexes', start);
        if (SYNTAX_CHARS.includes(ch)) return literal(ch.charCodeAt(0));
        return this.fail(`Unsupported escape "\\${ch}" in regex`, start);
    }
  }
}

function literal(code: number): RNode {
  return { t: 'set', ranges: [code, code] };
}

/** Turns `.` into a set now that the `s` flag is known. */
function resolveDots(node: RNode, dotAll: boolean): RNode {
  switch (node.t) {
    case 'dot':
      return { t: 'set', ranges: dotAll ? [0, 0xffff] : complement(LINE_TERMINATORS) };
    case 'set':
      return node;
    case 'seq':
      return { t: 'seq', items: node.items.map((n) => resolveDots(n, dotAll)) };
    case 'alt':
      return { t: 'alt', alts: node.alts.map((n) => resolveDots(n, dotAll)) };
    case 'repeat':
      return { ...node, node: resolveDots(node.node, dotAll) };
    case 'assert':
      return node;
  }
}

// ---------------------------------------------------------------- native safety bound

function containsQuantifierOrAlt(node: RNode): boolean {
  switch (node.t) {
    case 'set':
    case 'dot':
    case 'assert':
      return false;
    case 'alt':
      return true;
    case 'repeat':
      return node.max > 1 || containsQuantifierOrAlt(node.node);
    case 'seq':
      return node.items.some(containsQuantifierOrAlt);
  }
}

function countNodes(node: RNode): number {
  switch (node.t) {
    case 'set':
    case 'dot':
    case 'assert':
      return 1;
    case 'alt':
      return 1 + node.alts.reduce((n, a) => n + countNodes(a), 0);
    case 'seq':
      return 1 + node.items.reduce((n, a) => n + countNodes(a), 0);
    case 'repeat':
      return 1 + countNodes(node.node);
  }
}

/** Paths a backtracking matcher may explore from one start position, or Infinity when unbounded by design. */
function backtrackPaths(node: RNode): number {
  switch (node.t) {
    case 'set':
    case 'dot':
    case 'assert':
      return 1;
    case 'alt':
      return node.alts.reduce((n, a) => n + backtrackPaths(a), 0);
    case 'seq':
      return node.items.reduce((n, a) => n * backtrackPaths(a), 1);
    case 'repeat': {
      if (containsQuantifierOrAlt(node.node)) return Number.POSITIVE_INFINITY;
      const reps = Math.min(node.max, NATIVE_MAX_INPUT) - node.min + 1;
      return Math.max(1, reps);
    }
  }
}

function anchoredAtStart(node: RNode, multiline: boolean): boolean {
  if (multiline) return false;
  if (node.t === 'assert') return node.kind === 'start';
  if (node.t === 'seq') return node.items[0] !== undefined && anchoredAtStart(node.items[0], multiline);
  if (node.t === 'alt') return node.alts.every((a) => anchoredAtStart(a, multiline));
  return false;
}

// ---------------------------------------------------------------- linear engine

const OP_CHAR = 0;
const OP_SPLIT = 1;
const OP_JMP = 2;
const OP_ASSERT = 3;
const OP_MATCH = 4;

const A_START = 0;
const A_END = 1;
const A_WORD = 2;
const A_NONWORD = 3;

class Program {
  readonly op: number[] = [];
  readonly x: number[] = [];
  readonly y: number[] = [];
  readonly sets: (CharMatcher | null)[] = [];

  constructor(private readonly ignoreCase: boolean) {}

  emit(op: number, x = 0, y = 0, set: CharMatcher | null = null): number {
    if (this.op.length >= MAX_PROGRAM)
      throw new RegexRejection('Regex too complex (expands beyond 10,000 steps)', 0);
    this.op.push(op);
    this.x.push(x);
    this.y.push(y);
    this.sets.push(set);
    return this.op.length - 1;
  }

  compile(node: RNode): void {
    switch (node.t) {
      case 'set':
        this.emit(OP_CHAR, 0, 0, new CharMatcher(node.ranges, node.negate === true, this.ignoreCase));
        return;
      case 'dot':
        throw new Error('unresolved "." in regex program');
      case 'assert':
        this.emit(OP_ASSERT, { start: A_START, end: A_END, word: A_WORD, nonword: A_NONWORD }[node.kind]);
        return;
      case 'seq':
        for (const item of node.items) this.compile(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        for (let k = 0; k < node.alts.length - 1; k++) {
          const split = this.emit(OP_SPLIT);
          this.x[split] = split + 1;
          this.compile(node.alts[k]!);
          jumps.push(this.emit(OP_JMP));
          this.y[split] = this.op.length;
        }
        this.compile(node.alts[node.alts.length - 1]!);
        for (const j of jumps) this.x[j] = this.op.length;
        return;
      }
      case 'repeat': {
        for (let k = 0; k < node.min; k++) this.compile(node.node);
        if (node.max === Number.POSITIVE_INFINITY) {
          const split = this.emit(OP_SPLIT);
          this.x[split] = split + 1;
          this.compile(node.node);
          this.emit(OP_JMP, split);
          this.y[split] = this.op.length;
        } else {
          const splits: number[] = [];
          for (let k = node.min; k < node.max; k++) {
            const split = this.emit(OP_SPLIT);
            this.x[split] = split + 1;
            splits.push(split);
            this.compile(node.node);
          }
          for (const s of splits) this.y[s] = this.op.length;
        }
        return;
      }
    }
  }
}

function isWordCode(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    code === 0x5f ||
    (code >= 0x61 && code <= 0x7a)
  );
}

function isLineTerminator(code: number): boolean {
  return code === 0x0a || code === 0x0d || code === 0x2028 || code === 0x2029;
}

/** Thompson simulation: every program position is visited at most once per input position. */
class LinearMatcher {
  private readonly op: Int8Array;
  private readonly x: Int32Array;
  private readonly y: Int32Array;
  private readonly sets: (CharMatcher | null)[];
  private readonly mark: Uint32Array;
  private generation = 0;
  private readonly current: Int32Array;
  private readonly next: Int32Array;
  private readonly stack: Int32Array;

  constructor(
    program: Program,
    private readonly multiline: boolean,
    private readonly anchored: boolean,
  ) {
    const n = program.op.length;
    this.op = Int8Array.from(program.op);
    this.x = Int32Array.from(program.x);
    this.y = Int32Array.from(program.y);
    this.sets = program.sets;
    this.mark = new Uint32Array(n);
    this.current = new Int32Array(n);
    this.next = new Int32Array(n);
    this.stack = new Int32Array(n * 2 + 2);
  }

  private assertion(kind: number, s: string, pos: number): boolean {
    const before = pos > 0 ? s.charCodeAt(pos - 1) : -1;
    const after = pos < s.length ? s.charCodeAt(pos) : -1;
    switch (kind) {
      case A_START:
        return pos === 0 || (this.multiline && isLineTerminator(before));
      case A_END:
        return pos === s.length || (this.multiline && isLineTerminator(after));
      case A_WORD:
        return isWordCode(before) !== isWordCode(after);
      default:
        return isWordCode(before) === isWordCode(after);
    }
  }

  /** Adds the threads reachable from `pc` without consuming input; returns true on reaching MATCH. */
  private add(list: Int32Array, size: number[], pc: number, s: string, pos: number): boolean {
    const stack = this.stack;
    let top = 0;
    stack[top++] = pc;
    while (top > 0) {
      const p = stack[--top]!;
      if (this.mark[p] === this.generation) continue;
      this.mark[p] = this.generation;
      switch (this.op[p]) {
        case OP_CHAR:
          list[size[0]!++] = p;
          break;
        case OP_MATCH:
          return true;
        case OP_JMP:
          stack[top++] = this.x[p]!;
          break;
        case OP_SPLIT:
          stack[top++] = this.y[p]!;
          stack[top++] = this.x[p]!;
          break;
        case OP_ASSERT:
          if (this.assertion(this.x[p]!, s, pos)) stack[top++] = p + 1;
          break;
      }
    }
    return false;
  }

  test(s: string): boolean {
    let current = this.current;
    let next = this.next;
    const size = [0];
    const nextSize = [0];
    this.bump();
    for (let pos = 0; pos <= s.length; pos++) {
      if (!this.anchored || pos === 0) {
        if (this.add(current, size, 0, s, pos)) return true;
      }
      if (size[0] === 0) {
        if (this.anchored) return false;
        this.bump();
        continue;
      }
      if (pos === s.length) return false;
      const code = s.charCodeAt(pos);
      this.bump();
      nextSize[0] = 0;
      for (let k = 0; k < size[0]!; k++) {
        const p = current[k]!;
        if (this.sets[p]!.test(code) && this.add(next, nextSize, p + 1, s, pos + 1)) return true;
      }
      [current, next] = [next, current];
      size[0] = nextSize[0];
    }
    return false;
  }

  private bump(): void {
    this.generation++;
    if (this.generation === 0xffffffff) {
      this.mark.fill(0);
      this.generation = 1;
    }
  }
}

// ---------------------------------------------------------------- entry point

const ALLOWED_FLAGS = 'ims';

/** Parses and compiles a policy regex; throws {@link RegexRejection} for anything outside the safe subset. */
export function compileSafeRegex(source: string, flags: string): SafeRegex {
  for (const [k, f] of [...flags].entries()) {
    if (f === 'g' || f === 'y')
      throw new RegexRejection(`Regex flag "${f}" is not allowed (a policy tests one value)`, -1);
    if (!ALLOWED_FLAGS.includes(f))
      throw new RegexRejection(`Unsupported regex flag "${f}" (use i, m or s)`, -1);
    if (flags.indexOf(f) !== k) throw new RegexRejection(`Duplicate regex flag "${f}"`, -1);
  }
  const ignoreCase = flags.includes('i');
  const multiline = flags.includes('m');
  const parsed = resolveDots(new RegexParser(source).parse(), flags.includes('s'));
  let native: RegExp;
  try {
    native = new RegExp(source, flags);
  } catch (e) {
    throw new RegexRejection((e as Error).message, 0);
  }
  const program = new Program(ignoreCase);
  program.compile(parsed);
  program.emit(OP_MATCH);
  const anchored = anchoredAtStart(parsed, multiline);
  const linear = new LinearMatcher(program, multiline, anchored);

  const starts = anchored ? 1 : NATIVE_MAX_INPUT + 1;
  const work = starts * backtrackPaths(parsed) * countNodes(parsed);
  if (work <= NATIVE_BUDGET) {
    return {
      source,
      flags,
      engine: 'native',
      test: (input) => (input.length <= NATIVE_MAX_INPUT ? native.test(input) : linear.test(input)),
    };
  }
  return { source, flags, engine: 'linear', test: (input) => linear.test(input) };
}

/** For tests: the linear engine alone, whatever the pattern. */
export function compileLinearOnly(source: string, flags: string): (input: string) => boolean {
  const parsed = resolveDots(new RegexParser(source).parse(), flags.includes('s'));
  const program = new Program(flags.includes('i'));
  program.compile(parsed);
  program.emit(OP_MATCH);
  const matcher = new LinearMatcher(
    program,
    flags.includes('m'),
    anchoredAtStart(parsed, flags.includes('m')),
  );
  return (input) => matcher.test(input);
}
