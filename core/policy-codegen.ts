/**
 * The fast path of policy evaluation: JavaScript source generated from the validated policy tree and
 * compiled once with `new Function`. Each policy gets its own function, hence its own inline caches,
 * and comparisons against literals are specialised into plain `===`, `typeof` and numeric compares.
 * A tree of closures (policy-interpret.ts) is 3–4× slower on compound policies because every closure
 * instance shares the feedback of its siblings across all policies.
 *
 * Why the generated code is safe — nothing from the policy source reaches it except as data:
 * - the text is assembled only from fixed fragments in this file;
 * - property names and string literals enter only through `JSON.stringify`, which always yields one
 *   complete JavaScript string literal (used as `c["name"]` keys and operands), never code;
 * - numbers enter only as `String(n)` of a finite number, which is a numeric literal;
 * - operators come from fixed tables keyed by the validated tree's closed operator types;
 * - everything else (regexes, sets, parsed versions, ranges) is passed by reference in `K`;
 * - the only free names are `c` (the context), `t0…tn` temporaries and the helpers passed as parameters,
 *   and policy names never become identifiers, so nothing can shadow or reach a global.
 * Reads go through `own`/`ownMember` (Object.hasOwn unless the context came from `safeObject`), so the
 * prototype chain is invisible; a raw read is used only where the result is confirmed by `own` before
 * it can yield true.
 */
import type Range from 'semver/classes/range.js';
import parseSemver from 'semver/functions/parse.js';
import type { CompareOp, LiteralValue, PolicyNode, TextOp } from './policy-parse.ts';
import {
  clean,
  compareValues,
  compareVersions,
  finite,
  hadDataError,
  isPlainString,
  looseEquals,
  mayRaiseDataError,
  negative,
  numericValue,
  own,
  ownMember,
  type PolicyContext,
  resetDataError,
  semverDynamic,
  textOf,
  toNumber,
  truth,
  versionOf,
} from './policy-values.ts';

/** Helpers visible to generated code, by the parameter names it uses. */
const HELPERS = {
  own,
  ownMember,
  clean,
  num: numericValue,
  toNum: toNumber,
  eq: looseEquals,
  cmp: compareValues,
  truth,
  text: textOf,
  fin: finite,
  neg: negative,
  ver: versionOf,
  cmpv: compareVersions,
  semverDyn: semverDynamic,
  resetErr: resetDataError,
  hadErr: hadDataError,
} as const;
const HELPER_NAMES = Object.keys(HELPERS);
const HELPER_VALUES = Object.values(HELPERS);

const ORDER_OPS: Record<CompareOp, string> = {
  '==': '===',
  '!=': '!==',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};
const MIRROR: Record<CompareOp, CompareOp> = {
  '==': '==',
  '!=': '!=',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
};
const TEXT_METHODS: Record<TextOp, string> = {
  '^=': 'startsWith',
  '^!=': 'startsWith',
  '$=': 'endsWith',
  '$!=': 'endsWith',
  '><': 'includes',
  '<>': 'includes',
};
const ARITHMETIC_OPS: Record<string, string> = {
  '+': '+',
  '-': '-',
  '*': '*',
  '/': '/',
  '%': '%',
  '^': '**',
};
/** Membership lists up to this size compile to a chain of `===`; longer ones to a Set lookup. */
const INLINE_MEMBERSHIP = 8;

function key(name: string): string {
  return JSON.stringify(name);
}

function jsLiteral(value: LiteralValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    // A numeric string such as "1e400" reads as Infinity; these are expressions, not identifiers.
    if (Number.isNaN(value)) return '(0/0)';
    if (!Number.isFinite(value)) return value > 0 ? '(1/0)' : '(-1/0)';
    if (Object.is(value, -0)) return '(-0)';
    return value < 0 ? `(${String(value)})` : String(value);
  }
  return JSON.stringify(value);
}

/** A read that may see an inherited value (`raw`) plus the check (`own`) that must hold before a true result. */
interface RawRead {
  readonly raw: string;
  readonly own: string | null;
}

class Generator {
  private temps = 0;
  readonly constants: unknown[] = [];

  temp(): string {
    return `t${this.temps++}`;
  }

  declarations(): string {
    return this.temps === 0 ? '' : `let ${Array.from({ length: this.temps }, (_, i) => `t${i}`).join(', ')};`;
  }

  constant(value: unknown): string {
    this.constants.push(value);
    return `K[${this.constants.length - 1}]`;
  }

  rawRead(path: readonly string[]): RawRead {
    if (path.length === 1) return { raw: `c[${key(path[0]!)}]`, own: `own(c, ${key(path[0]!)})` };
    const conditions: string[] = [];
    let object = 'c';
    for (let i = 0; i < path.length - 1; i++) {
      const t = this.temp();
      const k = key(path[i]!);
      conditions.push(
        `(${t} = ${object}[${k}]) !== null && typeof ${t} === "object" && ${i === 0 ? 'own' : 'ownMember'}(${object}, ${k})`,
      );
      object = t;
    }
    const last = key(path[path.length - 1]!);
    return {
      raw: `(${conditions.join(' && ')} ? ${object}[${last}] : undefined)`,
      own: `ownMember(${object}, ${last})`,
    };
  }

  /** The operand as a raw read when it is a property, else as a plain value. */
  operand(node: PolicyNode): RawRead {
    return node.kind === 'ref' ? this.rawRead(node.path) : { raw: this.value(node), own: null };
  }

  confirmed(positive: string, read: RawRead): string {
    return read.own === null ? `(${positive})` : `(${positive} && ${read.own})`;
  }

  /** JavaScript for a node in a boolean context. */
  test(node: PolicyNode): string {
    switch (node.kind) {
      case 'literal':
        return truth(node.value) ? 'true' : 'false';
      case 'not':
        return `!${this.test(node.arg)}`;
      case 'logical':
        return `(${this.test(node.left)} ${node.op} ${this.test(node.right)})`;
      case 'conditional':
        return `(${this.test(node.test)} ? ${this.test(node.consequent)} : ${this.test(node.alternate)})`;
      case 'compare':
        return this.compare(node.op, node.left, node.right);
      case 'text':
        return this.text(node.op, node.left, node.right);
      case 'match': {
        const t = this.temp();
        const positive = `((${t} = text(${this.value(node.subject)})) !== null && ${this.constant(node.regex)}.test(${t}))`;
        return node.negate ? `!${positive}` : positive;
      }
      case 'in':
        return this.membership(node.subject, node.values);
      case 'semver':
        return this.semver(node.left, node.op, node.right, true);
      case 'satisfies':
        return this.satisfies(node.subject, node.range, true);
      default:
        return `truth(${this.value(node)})`;
    }
  }

  /** JavaScript for a node whose value is needed. */
  value(node: PolicyNode): string {
    switch (node.kind) {
      case 'literal':
        return jsLiteral(node.value);
      case 'ref': {
        const read = this.rawRead(node.path);
        const t = this.temp();
        return `((${t} = ${read.raw}) === undefined || !${read.own} ? null : clean(${t}))`;
      }
      case 'negate':
        return `neg(${this.value(node.arg)})`;
      case 'arith':
        return `fin(toNum(${this.value(node.left)}) ${ARITHMETIC_OPS[node.op]} toNum(${this.value(node.right)}))`;
      case 'conditional':
        return `(${this.test(node.test)} ? ${this.value(node.consequent)} : ${this.value(node.alternate)})`;
      case 'semver':
        return this.semver(node.left, node.op, node.right, false);
      case 'satisfies':
        return this.satisfies(node.subject, node.range, false);
      default:
        return this.test(node);
    }
  }

  compare(op: CompareOp, left: PolicyNode, right: PolicyNode): string {
    if (right.kind === 'literal') return this.compareWithLiteral(left, op, right.value);
    if (left.kind === 'literal') return this.compareWithLiteral(right, MIRROR[op], left.value);
    const a = this.value(left);
    const b = this.value(right);
    if (op === '==') return `eq(${a}, ${b})`;
    if (op === '!=') return `!eq(${a}, ${b})`;
    return `(cmp(${a}, ${b}) ${ORDER_OPS[op]} 0)`;
  }

  compareWithLiteral(operand: PolicyNode, op: CompareOp, lit: LiteralValue): string {
    if (op === '==') return this.equalsLiteral(operand, lit);
    if (op === '!=') return `!${this.equalsLiteral(operand, lit)}`;
    const o = ORDER_OPS[op];
    if (typeof lit === 'number' || (typeof lit === 'string' && !Number.isNaN(numericValue(lit)))) {
      // Numeric literal: numbers and numeric strings compare numerically; another string compares
      // as a string with a numeric string literal, and not at all with a number literal.
      const n = jsLiteral(typeof lit === 'number' ? lit : numericValue(lit));
      const read = this.operand(operand);
      const t = this.temp();
      const x = this.temp();
      const stringCase = typeof lit === 'string' ? `${t} ${o} ${JSON.stringify(lit)}` : 'false';
      return this.confirmed(
        `((${t} = ${read.raw}), typeof ${t} === "number" ? ${t} ${o} ${n} : typeof ${t} === "string" && ((${x} = num(${t})), ${x} === ${x} ? ${x} ${o} ${n} : ${stringCase}))`,
        read,
      );
    }
    if (typeof lit === 'string') {
      const read = this.operand(operand);
      const t = this.temp();
      return this.confirmed(
        `((${t} = ${read.raw}), typeof ${t} === "string" && ${t} ${o} ${JSON.stringify(lit)})`,
        read,
      );
    }
    return 'false'; // null and booleans are not ordered
  }

  equalsLiteral(operand: PolicyNode, lit: LiteralValue): string {
    if (lit === null) return `(${this.value(operand)} === null)`;
    const read = this.operand(operand);
    if (typeof lit === 'boolean' || lit === 'true' || lit === 'false') {
      const b = lit === true || lit === 'true';
      const t = this.temp();
      return this.confirmed(`((${t} = ${read.raw}) === ${b} || ${t} === "${b}")`, read);
    }
    if (typeof lit === 'number') {
      const t = this.temp();
      const n = jsLiteral(lit);
      return this.confirmed(
        `((${t} = ${read.raw}), typeof ${t} === "number" ? ${t} === ${n} : typeof ${t} === "string" && num(${t}) === ${n})`,
        read,
      );
    }
    const n = numericValue(lit);
    if (!Number.isNaN(n)) {
      const t = this.temp();
      const s = JSON.stringify(lit);
      return this.confirmed(
        `((${t} = ${read.raw}), typeof ${t} === "number" ? ${t} === ${jsLiteral(n)} : typeof ${t} === "string" && (${t} === ${s} || num(${t}) === ${jsLiteral(n)}))`,
        read,
      );
    }
    return this.confirmed(`${read.raw} === ${JSON.stringify(lit)}`, read);
  }

  text(op: TextOp, left: PolicyNode, right: PolicyNode): string {
    const negated = op === '^!=' || op === '$!=' || op === '<>';
    const method = TEXT_METHODS[op];
    const part = right.kind === 'literal' ? textOf(right.value) : null;
    let positive: string;
    if (part !== null) {
      const read = this.operand(left);
      const t = this.temp();
      const s = JSON.stringify(part);
      positive = this.confirmed(
        `((${t} = ${read.raw}), typeof ${t} === "string" ? ${t}.${method}(${s}) : (typeof ${t} === "number" || typeof ${t} === "boolean") && String(${t}).${method}(${s}))`,
        read,
      );
    } else {
      const t = this.temp();
      const p = this.temp();
      positive = `((${t} = text(${this.value(left)})) !== null && (${p} = text(${this.value(right)})) !== null && ${t}.${method}(${p}))`;
    }
    return negated ? `!${positive}` : positive;
  }

  membership(subject: PolicyNode, values: readonly LiteralValue[]): string {
    if (values.length === 0) return 'false';
    if (values.every((v) => typeof v === 'string' && isPlainString(v))) {
      const read = this.operand(subject);
      const t = this.temp();
      const strings = values as readonly string[];
      const check =
        strings.length <= INLINE_MEMBERSHIP
          ? strings.map((s) => `${t} === ${JSON.stringify(s)}`).join(' || ')
          : `typeof ${t} === "string" && ${this.constant(new Set(strings))}.has(${t})`;
      return this.confirmed(`((${t} = ${read.raw}), ${check})`, read);
    }
    const t = this.temp();
    return `((${t} = ${this.value(subject)}), ${values.map((v) => `eq(${t}, ${jsLiteral(v)})`).join(' || ')})`;
  }

  version(node: PolicyNode): string {
    if (node.kind === 'literal') return this.constant(parseSemver(node.value as string));
    return `ver(${this.value(node)})`;
  }

  semver(left: PolicyNode, op: PolicyNode, right: PolicyNode, asTest: boolean): string {
    if (op.kind !== 'literal' || typeof op.value !== 'string') {
      const call = `semverDyn(${this.value(left)}, ${this.value(op)}, ${this.value(right)})`;
      return asTest ? `(${call} === true)` : call;
    }
    const order = ORDER_OPS[op.value as CompareOp];
    const x = this.temp();
    const y = this.temp();
    const a = this.version(left);
    const b = this.version(right);
    return asTest
      ? `((${x} = ${a}) !== null && (${y} = ${b}) !== null && cmpv(${x}, ${y}) ${order} 0)`
      : `((${x} = ${a}) === null || (${y} = ${b}) === null ? null : cmpv(${x}, ${y}) ${order} 0)`;
  }

  satisfies(subject: PolicyNode, range: Range, asTest: boolean): string {
    const x = this.temp();
    const r = this.constant(range);
    return asTest
      ? `((${x} = ${this.version(subject)}) !== null && ${r}.test(${x}))`
      : `((${x} = ${this.version(subject)}) === null ? null : ${r}.test(${x}))`;
  }
}

export type Evaluate = (context: PolicyContext) => boolean | null;

/** The source of the generated function, for tests and debugging. */
export function generatePolicySource(root: PolicyNode): { source: string; constants: unknown[] } {
  const g = new Generator();
  const expr = g.test(root);
  const body = mayRaiseDataError(root)
    ? `resetErr();\n  try {\n    return ${expr} || (hadErr() ? null : false);\n  } catch {\n    return null;\n  }`
    : `try {\n    return ${expr};\n  } catch {\n    return null;\n  }`;
  const source = `'use strict';\nreturn function policy(c) {\n  ${g.declarations()}\n  ${body}\n};`;
  return { source, constants: g.constants };
}

/**
 * Compiles the policy to a generated function; returns undefined where code generation from strings
 * is disabled (`--disallow-code-generation-from-strings`), so the caller can fall back to closures.
 */
export function generatePolicy(root: PolicyNode): Evaluate | undefined {
  const { source, constants } = generatePolicySource(root);
  let factory: (...args: unknown[]) => Evaluate;
  try {
    factory = new Function(...HELPER_NAMES, 'K', source) as (...args: unknown[]) => Evaluate;
  } catch (e) {
    if (e instanceof EvalError) return undefined;
    throw e;
  }
  return factory(...HELPER_VALUES, Object.freeze(constants));
}
