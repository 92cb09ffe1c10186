/**
 * The policy evaluator: compiles a validated policy tree once into nested closures, specialised by
 * operand kind (a property against a literal, a plain-string membership, ...), so an evaluation only
 * walks closures. The one engine (DESIGN §3): no code is generated from strings.
 */
import type Range from 'semver/classes/range.js';
import parseSemver from 'semver/functions/parse.js';
import {
  type Get,
  orderWithNumber,
  orderWithString,
  type Test,
  textWithLiteral,
} from './policy-literal-tests.ts';
import type { CompareOp, LiteralValue, PolicyNode, TextOp } from './policy-parse.ts';
import {
  arithmeticOperand,
  arithmeticResult,
  clean,
  compareValues,
  compareVersions,
  hadDataError,
  isPlainString,
  looseEquals,
  mayRaiseDataError,
  numericValue,
  orderHolds,
  own,
  ownMember,
  type PolicyContext,
  resetDataError,
  semverDynamic,
  textOf,
  truth,
  type Version,
  versionOf,
} from './policy-values.ts';

/** A read of `a.b.c`: own properties only, members of non-objects are null. */
function compileRef(path: readonly string[]): Get {
  if (path.length === 1) {
    const k = path[0]!;
    return (c) => {
      const v = c[k];
      return v === undefined || !own(c, k) ? null : clean(v);
    };
  }
  if (path.length === 2) {
    const [k0, k1] = path as [string, string];
    return (c) => {
      const o = c[k0];
      if (o === null || typeof o !== 'object' || !own(c, k0)) return null;
      const v = (o as Record<string, unknown>)[k1];
      return v === undefined || !ownMember(o as Record<string, unknown>, k1) ? null : clean(v);
    };
  }
  const keys = path.slice();
  return (c) => {
    let o: unknown = c;
    for (let i = 0; i < keys.length; i++) {
      if (o === null || typeof o !== 'object') return null;
      const k = keys[i]!;
      const v = (o as Record<string, unknown>)[k];
      if (v === undefined || !(i === 0 ? own : ownMember)(o as Record<string, unknown>, k)) return null;
      o = v;
    }
    return clean(o);
  };
}

// ---------------------------------------------------------------- comparisons

const MIRROR: Record<CompareOp, CompareOp> = {
  '==': '==',
  '!=': '!=',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
};

function not(test: Test): Test {
  return (c) => !test(c);
}

/** `==` against a literal, specialised by the literal's kind. */
function equalsLiteral(operand: PolicyNode, lit: LiteralValue): Test {
  if (operand.kind === 'ref' && operand.path.length === 1 && typeof lit === 'string' && isPlainString(lit)) {
    // The commonest policy shape: one property against a plain string. Reading without the own-check
    // first is safe because a mismatch needs no confirmation; a match is confirmed before returning true.
    const k = operand.path[0]!;
    return (c) => c[k] === lit && own(c, k);
  }
  const get = compileValue(operand);
  if (lit === null) return (c) => get(c) === null;
  if (typeof lit === 'boolean' || lit === 'true' || lit === 'false') {
    const b = lit === true || lit === 'true';
    const s = b ? 'true' : 'false';
    if (operand.kind === 'ref' && operand.path.length === 1) {
      const k = operand.path[0]!;
      return (c) => {
        const v = c[k];
        return (v === b || v === s) && own(c, k);
      };
    }
    return (c) => {
      const v = get(c);
      return v === b || v === s;
    };
  }
  if (typeof lit === 'number') {
    return (c) => {
      const v = get(c);
      return typeof v === 'number' ? v === lit : typeof v === 'string' && numericValue(v) === lit;
    };
  }
  const n = numericValue(lit);
  if (!Number.isNaN(n)) {
    return (c) => {
      const v = get(c);
      if (typeof v === 'number') return v === n;
      return typeof v === 'string' && (v === lit || numericValue(v) === n);
    };
  }
  return (c) => get(c) === lit;
}

function compareWithLiteral(operand: PolicyNode, op: CompareOp, lit: LiteralValue): Test {
  if (op === '==') return equalsLiteral(operand, lit);
  if (op === '!=') return not(equalsLiteral(operand, lit));
  const get = compileValue(operand);
  if (typeof lit === 'number') return orderWithNumber(get, op, lit, null);
  if (typeof lit === 'string') {
    const n = numericValue(lit);
    return !Number.isNaN(n) ? orderWithNumber(get, op, n, lit) : orderWithString(get, op, lit);
  }
  return () => false; // null and booleans are not ordered
}

function compileCompare(op: CompareOp, left: PolicyNode, right: PolicyNode): Test {
  if (right.kind === 'literal') return compareWithLiteral(left, op, right.value);
  if (left.kind === 'literal') return compareWithLiteral(right, MIRROR[op], left.value);
  const a = compileValue(left);
  const b = compileValue(right);
  switch (op) {
    case '==':
      return (c) => looseEquals(a(c), b(c));
    case '!=':
      return (c) => !looseEquals(a(c), b(c));
    case '<':
      return (c) => compareValues(a(c), b(c)) < 0;
    case '<=':
      return (c) => compareValues(a(c), b(c)) <= 0;
    case '>':
      return (c) => compareValues(a(c), b(c)) > 0;
    default:
      return (c) => compareValues(a(c), b(c)) >= 0;
  }
}

// ---------------------------------------------------------------- text, regex, membership

function positiveText(op: TextOp): (text: string, part: string) => boolean {
  if (op === '^=' || op === '^!=') return (t, p) => t.startsWith(p);
  if (op === '$=' || op === '$!=') return (t, p) => t.endsWith(p);
  return (t, p) => t.includes(p);
}

/** `^= $= ><` and their negations; a negated operator is exactly `!` of its positive one (null included). */
function compileText(op: TextOp, left: PolicyNode, right: PolicyNode): Test {
  const negated = op === '^!=' || op === '$!=' || op === '<>';
  let test: Test;
  const literal = right.kind === 'literal' ? textOf(right.value) : undefined;
  if (typeof literal === 'string' && left.kind === 'ref' && left.path.length === 1) {
    test = textWithLiteral(op, left.path[0]!, literal);
    return negated ? not(test) : test;
  }
  const a = compileValue(left);
  if (typeof literal === 'string') {
    if (op === '^=' || op === '^!=') {
      test = (c) => {
        const v = a(c);
        return typeof v === 'string' ? v.startsWith(literal) : textOf(v)?.startsWith(literal) === true;
      };
    } else if (op === '$=' || op === '$!=') {
      test = (c) => {
        const v = a(c);
        return typeof v === 'string' ? v.endsWith(literal) : textOf(v)?.endsWith(literal) === true;
      };
    } else {
      test = (c) => {
        const v = a(c);
        return typeof v === 'string' ? v.includes(literal) : textOf(v)?.includes(literal) === true;
      };
    }
  } else {
    const b = compileValue(right);
    const holds = positiveText(op);
    test = (c) => {
      const t = textOf(a(c));
      if (t === null) return false;
      const p = textOf(b(c));
      return p !== null && holds(t, p);
    };
  }
  return negated ? not(test) : test;
}

function compileIn(subject: PolicyNode, values: readonly LiteralValue[]): Test {
  if (values.length > 0 && values.every((v) => typeof v === 'string' && isPlainString(v))) {
    const set = new Set(values as string[]);
    if (subject.kind === 'ref' && subject.path.length === 1) {
      const k = subject.path[0]!;
      return (c) => {
        const v = c[k];
        return typeof v === 'string' && set.has(v) && own(c, k);
      };
    }
    const get = compileValue(subject);
    return (c) => {
      const v = get(c);
      return typeof v === 'string' && set.has(v);
    };
  }
  const tests = values.map((v) => equalsLiteral(subject, v));
  return (c) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(c)) return true;
    return false;
  };
}

// ---------------------------------------------------------------- semver

function compileSemver(left: PolicyNode, opNode: PolicyNode, right: PolicyNode): Get {
  if (opNode.kind === 'literal' && typeof opNode.value === 'string') {
    const a = versionGetter(left);
    const b = versionGetter(right);
    const op = opNode.value;
    return (c) => {
      const x = a(c);
      if (x === null) return null;
      const y = b(c);
      return y === null ? null : orderHolds(op, compareVersions(x, y));
    };
  }
  const a = compileValue(left);
  const op = compileValue(opNode);
  const b = compileValue(right);
  return (c) => semverDynamic(a(c), op(c), b(c));
}

function versionGetter(node: PolicyNode): (c: PolicyContext) => Version | null {
  if (node.kind === 'literal') {
    const v = parseSemver(node.value as string);
    return () => v;
  }
  const get = compileValue(node);
  return (c) => versionOf(get(c));
}

function compileSatisfies(subject: PolicyNode, range: Range): Get {
  const get = versionGetter(subject);
  return (c) => {
    const v = get(c);
    return v === null ? null : range.test(v);
  };
}

// ---------------------------------------------------------------- arithmetic

/** Arithmetic: a failure (see arithmeticOperand) ends the evaluation as an error, never as null. */
function compileArithmetic(op: string, left: PolicyNode, right: PolicyNode): Get {
  const a = compileValue(left);
  const b = compileValue(right);
  switch (op) {
    case '+':
      return (c) => arithmeticResult(arithmeticOperand(a(c)) + arithmeticOperand(b(c)));
    case '-':
      return (c) => arithmeticResult(arithmeticOperand(a(c)) - arithmeticOperand(b(c)));
    case '*':
      return (c) => arithmeticResult(arithmeticOperand(a(c)) * arithmeticOperand(b(c)));
    case '/':
      return (c) => arithmeticResult(arithmeticOperand(a(c)) / arithmeticOperand(b(c)));
    case '%':
      return (c) => arithmeticResult(arithmeticOperand(a(c)) % arithmeticOperand(b(c)));
    default:
      return (c) => arithmeticResult(arithmeticOperand(a(c)) ** arithmeticOperand(b(c)));
  }
}

// ---------------------------------------------------------------- entry points

/** Compiles a node for a boolean context. */
export function compileTest(node: PolicyNode): Test {
  switch (node.kind) {
    case 'literal': {
      const t = truth(node.value);
      return () => t;
    }
    case 'not': {
      const t = compileTest(node.arg);
      return (c) => !t(c);
    }
    case 'logical': {
      const a = compileTest(node.left);
      const b = compileTest(node.right);
      return node.op === '&&' ? (c) => a(c) && b(c) : (c) => a(c) || b(c);
    }
    case 'compare':
      return compileCompare(node.op, node.left, node.right);
    case 'text':
      return compileText(node.op, node.left, node.right);
    case 'match': {
      const get = compileValue(node.subject);
      const regex = node.regex;
      const test: Test = (c) => {
        const t = textOf(get(c));
        return t !== null && regex.test(t);
      };
      return node.negate ? not(test) : test;
    }
    case 'in':
      return compileIn(node.subject, node.values);
    case 'conditional': {
      const t = compileTest(node.test);
      const yes = compileTest(node.consequent);
      const no = compileTest(node.alternate);
      return (c) => (t(c) ? yes(c) : no(c));
    }
    case 'semver':
    case 'satisfies': {
      const get = compileValue(node);
      return (c) => get(c) === true;
    }
    default: {
      const get = compileValue(node);
      return (c) => truth(get(c));
    }
  }
}

/** Compiles a node for a value context. */
export function compileValue(node: PolicyNode): Get {
  switch (node.kind) {
    case 'literal': {
      const v = node.value;
      return () => v;
    }
    case 'ref':
      return compileRef(node.path);
    case 'negate': {
      const a = compileValue(node.arg);
      return (c) => -arithmeticOperand(a(c));
    }
    case 'arith':
      return compileArithmetic(node.op, node.left, node.right);
    case 'conditional': {
      const t = compileTest(node.test);
      const yes = compileValue(node.consequent);
      const no = compileValue(node.alternate);
      return (c) => (t(c) ? yes(c) : no(c));
    }
    case 'semver':
      return compileSemver(node.left, node.op, node.right);
    case 'satisfies':
      return compileSatisfies(node.subject, node.range);
    default: {
      const t = compileTest(node);
      return (c) => t(c);
    }
  }
}

/**
 * The policy's `evaluate`: never throws; true, false, or null for an evaluation error: a non-match
 * that met a data error (semver() on a non-version), arithmetic that failed, or an internal failure.
 */
export function interpretPolicy(root: PolicyNode): (context: PolicyContext) => boolean | null {
  const test = compileTest(root);
  if (!mayRaiseDataError(root)) {
    return (c) => {
      try {
        return test(c);
      } catch {
        return null;
      }
    };
  }
  return (c) => {
    resetDataError();
    try {
      return test(c) || (hadDataError() ? null : false);
    } catch {
      return null;
    }
  };
}
