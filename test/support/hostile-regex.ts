/**
 * Hostile regexes and device strings for the policy regex cost bound (issue 11 item 1): shared by the
 * property test (test/fuzz/policy-regex.test.ts) and bench `policy-regex-worst` (bench/regex.ts).
 *
 * Patterns: the issue's own, families known to be slow on backtracking engines (nested and overlapping
 * quantifiers) or on RE2 (large counted repeats, alternations under counts, and patterns whose DFA has
 * exponentially many states, such as `[ab]*a[ab]{k}$`), each swept across the cost limit, plus
 * generated ones. Strings: 1,024 UTF-16 code units, the longest value a device can send (DESIGN §2).
 */
import fc from 'fast-check';

export const DEVICE_STRING_LENGTH = 1024;

export const ISSUE_PATTERNS: readonly string[] = [
  '(a?){24}z',
  '^(a?){25}a{25}$',
  '(?:.|a){1,1000}$',
  '[a-z]{0,1000}[a-z]{0,1000}[a-z]{0,1000}!',
  '(a+)+$',
  '(a|aa)*b',
  'a*a*a*a*a*a*b',
  '(.*a){20}$',
  '(\\w+\\s?)+$',
  '^(([a-z])+.)+[A-Z]([a-z])+$',
];

/** Every other letter of Latin Extended-A: a class of ~60 ranges, twice that once folded under `i`. */
const LATIN_ALTERNATE = Array.from({ length: 60 }, (_, k) => String.fromCharCode(0x100 + 2 * k)).join('');

const FAMILIES: readonly ((k: number) => string)[] = [
  (k) => `^(a?){${k}}a{${k}}$`,
  (k) => `(?:.|a){1,${k}}$`,
  (k) => `[a-z]{0,${k}}[a-z]{0,${k}}!`,
  (k) => `\\w{1,${k}}!`,
  (k) => `(?:a|b|ab|ba){1,${k}}!`,
  (k) => `[ab]*a[ab]{${k}}$`,
  (k) => `(?:a|b)*a(?:a|b){${k}}$`,
  (k) => `(?:[ab]*a[ab]{${k}}$|[ab]*b[ab]{${k}}!)`,
  (k) => `.*a.{${k}}$`,
  (k) => `(?:.*a){${k}}!`,
  (k) => `(?:a*b?){${k}}c`,
  (k) => `(?:\\s|\\S){0,${k}}\\n`,
  (k) => `[${LATIN_ALTERNATE}]*[${LATIN_ALTERNATE.slice(0, 20)}][${LATIN_ALTERNATE}]{${k}}$`,
  // Plain literals run on V8: long ones whose prefix keeps matching.
  (k) => `${'a'.repeat(k)}b${'a'.repeat(k)}`,
  (k) => 'ab'.repeat(k),
];

/** Family members from below to well above the limit, with the flag sets a policy may use. */
export function familyPatterns(): { source: string; flags: string }[] {
  const out: { source: string; flags: string }[] = [];
  for (const family of FAMILIES) {
    for (const k of [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100]) {
      for (const flags of ['', 'i', 'ms']) out.push({ source: family(k), flags });
    }
  }
  for (const source of ISSUE_PATTERNS) for (const flags of ['', 'i', 'm']) out.push({ source, flags });
  return out;
}

const atom = fc.constantFrom(
  'a',
  'b',
  '.',
  '\\w',
  '\\s',
  '\\d',
  '[ab]',
  '[^a]',
  '[a-z]',
  'é',
  '\\b',
  '$',
  '^',
);
const quantifier = fc.constantFrom('*', '+', '?', '*?', '{2}', '{0,3}', '{1,8}', '{2,}', '{0,24}', '{3,50}');

/** Nested, overlapping and bounded quantifiers over a small alphabet, so that alternatives overlap. */
export const hostilePattern: fc.Arbitrary<string> = fc.letrec<{ re: string }>((tie) => ({
  re: fc.oneof(
    { depthSize: 'small', maxDepth: 5 },
    atom,
    fc.tuple(tie('re'), tie('re')).map(([a, b]) => a + b),
    fc.tuple(tie('re'), tie('re')).map(([a, b]) => `(?:${a}|${b})`),
    fc.tuple(tie('re'), quantifier).map(([a, q]) => `(?:${a})${q}`),
    fc.tuple(tie('re'), quantifier, quantifier).map(([a, q, r]) => `(?:(?:${a})${q})${r}`),
  ),
})).re;

export const hostileFlags: fc.Arbitrary<string> = fc.constantFrom('', 'i', 'm', 's', 'im');

/** Deterministic 1 KiB strings that drive the families above into their slow paths. */
export function hostileStrings(): string[] {
  let seed = 0x2f6e2b1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const mix = (alphabet: string[]) => {
    let s = '';
    while (s.length < DEVICE_STRING_LENGTH) s += alphabet[Math.floor(random() * alphabet.length)];
    return s.slice(0, DEVICE_STRING_LENGTH);
  };
  return [
    `${'a'.repeat(DEVICE_STRING_LENGTH - 1)}!`,
    'a'.repeat(DEVICE_STRING_LENGTH),
    mix(['a', 'b']),
    mix(['a', 'b', '\n']),
    mix(['a', 'A', '!', ' ']),
    mix([...'abcdefghijklmnopqrstuvwxyz']),
    mix(['a', 'é', 'É', '\r\n', '\u2028', '😀'.slice(0, 1), '😀'.slice(1)]),
    'é'.repeat(DEVICE_STRING_LENGTH),
    mix([...LATIN_ALTERNATE, ...LATIN_ALTERNATE.toLowerCase(), 'a']),
  ];
}
