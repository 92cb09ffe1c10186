/**
 * Syntax of policy regexes: a strict subset of JavaScript regex syntax without the `u` flag (no
 * backreferences, no lookaround), parsed into a small tree whose character sets are explicit UTF-16
 * code unit ranges. policy-regex.ts turns the tree into RE2 syntax, so JavaScript's meaning of `\s`,
 * `.`, `^`/`$` under `m` and of `i` is kept exactly rather than left to RE2's own definitions.
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

/** RE2's own limit on a counted repetition. */
const MAX_REPEAT = 1000;

// ---------------------------------------------------------------- character sets

/** A set of UTF-16 code units as sorted, disjoint, inclusive [lo, hi] pairs. */
export type Ranges = number[];

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
const SPACE: Ranges = [
  0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f,
  0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff,
];
export const LINE_TERMINATORS: Ranges = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];

export function normalize(ranges: Ranges): Ranges {
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

export function complement(ranges: Ranges): Ranges {
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

export function inRanges(ranges: Ranges, code: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (code < ranges[i]!) return false;
    if (code <= ranges[i + 1]!) return true;
  }
  return false;
}

/** JavaScript's non-unicode case canonicalisation (ECMA-262 Canonicalize with rer.[[IgnoreCase]], no u). */
export function canonicalize(code: number): number {
  const upper = String.fromCharCode(code).toUpperCase();
  if (upper.length !== 1) return code;
  const cu = upper.charCodeAt(0);
  return code >= 128 && cu < 128 ? code : cu;
}

// ---------------------------------------------------------------- syntax

export type RNode =
  /** `negate` applies after case folding, as in JavaScript: `/[^a]/i` does not match "A". */
  | { readonly t: 'set'; readonly ranges: Ranges; readonly negate?: boolean }
  | { readonly t: 'dot' }
  | { readonly t: 'seq'; readonly items: RNode[] }
  | { readonly t: 'alt'; readonly alts: RNode[] }
  | { readonly t: 'repeat'; readonly node: RNode; readonly min: number; readonly max: number }
  | { readonly t: 'assert'; readonly kind: 'start' | 'end' | 'word' | 'nonword' };

const SYNTAX_CHARS = '^$\\.*+?()[]{}|/-';

export class RegexParser {
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
export function resolveDots(node: RNode, dotAll: boolean): RNode {
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
