/**
 * Parsing of distribution policies (DESIGN §3): jsep with the policy grammar (policy-grammar.ts), then
 * validation into a small typed tree ({@link PolicyNode}) that the evaluator trusts.
 */
import type jsep from 'jsep';
import Range from 'semver/classes/range.js';
import validSemver from 'semver/functions/valid.js';
import { PolicyError } from './errors.ts';
import {
  FORBIDDEN_NAMES,
  ParseFailure,
  POLICY_LIMITS,
  parseExpression,
  tokenStart,
} from './policy-grammar.ts';
import { compileSafeRegex, PolicyRegexBudget, RegexRejection, type SafeRegex } from './policy-regex.ts';

export { POLICY_LIMITS } from './policy-grammar.ts';

export type LiteralValue = string | number | boolean | null;
export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%' | '^';
export type TextOp = '^=' | '^!=' | '$=' | '$!=' | '><' | '<>';

/** A validated policy expression. `start` is the 0-based offset of the node in the source. */
export type PolicyNode =
  | { readonly kind: 'literal'; readonly value: LiteralValue; readonly raw: string; readonly start: number }
  | { readonly kind: 'ref'; readonly path: readonly string[]; readonly start: number }
  | { readonly kind: 'not'; readonly arg: PolicyNode; readonly start: number }
  | { readonly kind: 'negate'; readonly arg: PolicyNode; readonly start: number }
  | {
      readonly kind: 'logical';
      readonly op: '&&' | '||';
      readonly left: PolicyNode;
      readonly right: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'compare';
      readonly op: CompareOp;
      readonly left: PolicyNode;
      readonly right: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'arith';
      readonly op: ArithmeticOp;
      readonly left: PolicyNode;
      readonly right: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'text';
      readonly op: TextOp;
      readonly left: PolicyNode;
      readonly right: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'match';
      readonly negate: boolean;
      readonly subject: PolicyNode;
      readonly regex: SafeRegex;
      readonly raw: string;
      readonly start: number;
    }
  | {
      readonly kind: 'in';
      readonly subject: PolicyNode;
      readonly values: readonly LiteralValue[];
      readonly start: number;
    }
  | {
      readonly kind: 'conditional';
      readonly test: PolicyNode;
      readonly consequent: PolicyNode;
      readonly alternate: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'semver';
      readonly left: PolicyNode;
      /** A literal operator is checked at parse time; any other expression is checked when evaluated. */
      readonly op: PolicyNode;
      readonly right: PolicyNode;
      readonly start: number;
    }
  | {
      readonly kind: 'satisfies';
      readonly subject: PolicyNode;
      readonly range: Range;
      readonly rangeSource: string;
      readonly start: number;
    };

export interface ParsedPolicy {
  readonly root: PolicyNode;
  readonly terms: number;
}

export const SEMVER_OPS: ReadonlySet<string> = new Set(['<', '<=', '>', '>=', '==', '!=']);
const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*(?:-[A-Za-z0-9_$]+)*$/;

// ---------------------------------------------------------------- errors

/** A caret excerpt: the source on one line (windowed when long) and a caret under the column. */
export function caretExcerpt(source: string, column: number): string {
  const flat = source.replace(/[\t\n\r\v\f]/g, ' ');
  const at = Math.max(0, column - 1);
  const width = 80;
  if (flat.length <= width) return `${flat}\n${' '.repeat(at)}^`;
  const from = Math.max(0, Math.min(at - width / 2, flat.length - width));
  const to = Math.min(flat.length, from + width);
  const prefix = from > 0 ? '…' : '';
  const suffix = to < flat.length ? '…' : '';
  return `${prefix}${flat.slice(from, to)}${suffix}\n${' '.repeat(prefix.length + at - from)}^`;
}

export function policyError(source: string, reason: string, offset: number): PolicyError {
  const column = Math.max(1, Math.min(offset, source.length) + 1);
  return new PolicyError(reason, column, caretExcerpt(source, column));
}

function describeJsepError(source: string, error: { description: string; index: number }): PolicyError {
  const at = error.index;
  const ch = source[at];
  const strict = source.slice(at - 2, at + 1);
  if (strict === '===' || strict === '!==') {
    return policyError(source, `There is no ${strict} operator (use ${strict.slice(0, 2)})`, at - 2);
  }
  if (ch === '=' && source[at + 1] !== '=' && source[at + 1] !== '~') {
    return policyError(source, 'Assignment is not allowed (compare with ==)', at);
  }
  return policyError(source, error.description, at);
}

// ---------------------------------------------------------------- validation

class Validator {
  terms = 0;
  /** A policy's regexes share one evaluation's time budget (policy-regex.ts). */
  readonly regexBudget = new PolicyRegexBudget();
  constructor(private readonly source: string) {}

  fail(reason: string, offset: number): never {
    throw policyError(this.source, reason, offset);
  }

  startOf(node: jsep.Expression): number {
    const known = tokenStart(node);
    if (known !== undefined) return known;
    if (node.type === 'BinaryExpression' || node.type === 'MemberExpression') {
      return this.startOf((node.left ?? node.object) as jsep.Expression);
    }
    if (node.type === 'ConditionalExpression') return this.startOf(node.test as jsep.Expression);
    if (node.type === 'CallExpression') return this.startOf(node.callee as jsep.Expression);
    return 0;
  }

  term(offset: number): void {
    this.terms++;
    if (this.terms > POLICY_LIMITS.maxTerms) this.fail(`More than ${POLICY_LIMITS.maxTerms} terms`, offset);
  }

  node(expr: jsep.Expression): PolicyNode {
    const start = this.startOf(expr);
    switch (expr.type) {
      case 'Literal':
        return this.literal(expr as jsep.Literal, start);
      case 'Identifier':
      case 'MemberExpression': {
        const path = this.path(expr);
        this.term(start);
        return { kind: 'ref', path, start };
      }
      case 'UnaryExpression':
        return this.unary(expr as jsep.UnaryExpression, start);
      case 'BinaryExpression':
        return this.binary(expr as jsep.BinaryExpression, start);
      case 'ConditionalExpression': {
        const c = expr as jsep.ConditionalExpression;
        return {
          kind: 'conditional',
          test: this.node(c.test),
          consequent: this.node(c.consequent),
          alternate: this.node(c.alternate),
          start,
        };
      }
      case 'CallExpression':
        return this.call(expr as jsep.CallExpression, start);
      case 'ArrayExpression':
        return this.fail('Array literals are only allowed on the right of "in"', start);
      case 'Compound': {
        const second = (expr as jsep.Compound).body[1];
        const at = second ? this.startOf(second) : start;
        return this.fail(
          `Unexpected "${this.source[at] ?? ''}" (a policy is one expression; missing operator?)`,
          at,
        );
      }
      case 'SequenceExpression':
        return this.fail('Comma expressions are not allowed', start);
      case 'ThisExpression':
        return this.fail('"this" is not allowed', start);
      default:
        return this.fail(`Unsupported expression (${expr.type})`, start);
    }
  }

  literal(lit: jsep.Literal, start: number): PolicyNode {
    if (lit.value instanceof RegExp) {
      return this.fail('Regex literals are only allowed on the right of =~ or !~', start);
    }
    if (typeof lit.value === 'number' && !Number.isFinite(lit.value)) this.fail('Number out of range', start);
    this.term(start);
    return { kind: 'literal', value: lit.value, raw: lit.raw, start };
  }

  path(expr: jsep.Expression): string[] {
    if (expr.type === 'Identifier') {
      const name = (expr as jsep.Identifier).name;
      if (!NAME.test(name)) this.fail(`Invalid name "${name}"`, this.startOf(expr));
      return [name];
    }
    if (expr.type === 'MemberExpression') {
      const member = expr as jsep.MemberExpression;
      if (member.computed) this.fail('Computed member access is not allowed (use a.b)', this.startOf(expr));
      const object = member.object;
      if (object.type !== 'Identifier' && object.type !== 'MemberExpression') {
        this.fail('Member access is only allowed on properties (like hw.rev)', this.startOf(expr));
      }
      const property = member.property as jsep.Identifier;
      if (FORBIDDEN_NAMES.has(property.name)) {
        this.fail(`Access to "${property.name}" is not allowed`, this.startOf(property));
      }
      return [...this.path(object), ...this.path(property)];
    }
    return this.fail('Expected a property name', this.startOf(expr));
  }

  unary(expr: jsep.UnaryExpression, start: number): PolicyNode {
    const arg = this.node(expr.argument);
    if (expr.operator === '!') return { kind: 'not', arg, start };
    // Fold `-3` so comparisons against negative numbers get the literal fast paths.
    if (arg.kind === 'literal' && typeof arg.value === 'number') {
      return { kind: 'literal', value: -arg.value, raw: `-${arg.raw}`, start };
    }
    return { kind: 'negate', arg, start };
  }

  binary(expr: jsep.BinaryExpression, start: number): PolicyNode {
    const op = expr.operator;
    if (op === '=~' || op === '!~') {
      const subject = this.node(expr.left);
      const regex = this.regex(expr.right);
      return { kind: 'match', negate: op === '!~', subject, regex: regex.regex, raw: regex.raw, start };
    }
    if (op === 'in') {
      const subject = this.node(expr.left);
      return { kind: 'in', subject, values: this.arrayLiteral(expr.right), start };
    }
    const left = this.node(expr.left);
    const right = this.node(expr.right);
    switch (op) {
      case '&&':
      case '||':
        return { kind: 'logical', op, left, right, start };
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return { kind: 'compare', op, left, right, start };
      case '+':
      case '-':
      case '*':
      case '/':
      case '%':
      case '^':
        return { kind: 'arith', op, left, right, start };
      case '^=':
      case '^!=':
      case '$=':
      case '$!=':
      case '><':
      case '<>':
        return { kind: 'text', op, left, right, start };
      default:
        return this.fail(`Unknown operator "${op}"`, start);
    }
  }

  regex(expr: jsep.Expression): { regex: SafeRegex; raw: string } {
    const start = this.startOf(expr);
    if (expr.type !== 'Literal')
      return this.fail('The right of =~ must be a regex literal like /^X1/', start);
    const lit = expr as jsep.Literal;
    let pattern: string;
    let flags: string;
    let patternOffset: number;
    if (lit.value instanceof RegExp) {
      const close = lit.raw.lastIndexOf('/');
      pattern = lit.raw.slice(1, close);
      flags = lit.raw.slice(close + 1);
      patternOffset = start + 1;
    } else if (typeof lit.value === 'string') {
      pattern = lit.value;
      flags = '';
      patternOffset = -1;
    } else {
      return this.fail('The right of =~ must be a regex literal like /^X1/', start);
    }
    this.term(start);
    if (pattern.length > POLICY_LIMITS.maxRegexLength) {
      this.fail(`Regex longer than ${POLICY_LIMITS.maxRegexLength} characters`, start);
    }
    let regex: SafeRegex;
    try {
      regex = compileSafeRegex(pattern, flags);
    } catch (e) {
      if (!(e instanceof RegexRejection)) throw e;
      const at = patternOffset >= 0 && e.offset >= 0 ? patternOffset + e.offset : start;
      return this.fail(e.reason, at);
    }
    const overBudget = this.regexBudget.charge(regex);
    if (overBudget) this.fail(overBudget, start);
    return { regex, raw: lit.raw };
  }

  arrayLiteral(expr: jsep.Expression): LiteralValue[] {
    const start = this.startOf(expr);
    if (expr.type !== 'ArrayExpression') {
      return this.fail('The right of "in" must be an array literal like ["us", "eu"]', start);
    }
    const values: LiteralValue[] = [];
    for (const element of (expr as jsep.ArrayExpression).elements) {
      if (element === null) return this.fail('Empty array element', start);
      const node = this.node(element);
      if (node.kind !== 'literal') return this.fail('Array elements must be literals', node.start);
      values.push(node.value);
    }
    return values;
  }

  call(expr: jsep.CallExpression, start: number): PolicyNode {
    const callee = expr.callee;
    const name =
      callee.type === 'Identifier'
        ? (callee as jsep.Identifier).name
        : this.source.slice(start, this.calleeEnd(expr));
    if (callee.type !== 'Identifier' || (name !== 'semver' && name !== 'satisfies')) {
      return this.fail(`Unknown function "${name}"`, start);
    }
    this.term(start);
    const args = expr.arguments;
    if (name === 'semver') {
      if (args.length !== 3) this.fail(`semver() takes 3 arguments (a, op, b), got ${args.length}`, start);
      const [a, op, b] = args.map((arg) => this.node(arg)) as [PolicyNode, PolicyNode, PolicyNode];
      this.versionLiteral(a);
      this.versionLiteral(b);
      if (op.kind === 'literal' && (typeof op.value !== 'string' || !SEMVER_OPS.has(op.value))) {
        this.fail(`Unknown semver operator ${op.raw} (use "<", "<=", ">", ">=", "==" or "!=")`, op.start);
      }
      return { kind: 'semver', left: a, op, right: b, start };
    }
    if (args.length !== 2)
      this.fail(`satisfies() takes 2 arguments (version, range), got ${args.length}`, start);
    const subject = this.node(args[0]!);
    this.versionLiteral(subject);
    const rangeNode = this.node(args[1]!);
    if (rangeNode.kind !== 'literal' || typeof rangeNode.value !== 'string') {
      return this.fail(
        'The range of satisfies() must be a string literal like "^1.2 || 2.x"',
        rangeNode.start,
      );
    }
    let range: Range;
    try {
      range = new Range(rangeNode.value);
    } catch {
      return this.fail(`Invalid version range ${rangeNode.raw}`, rangeNode.start);
    }
    return { kind: 'satisfies', subject, range, rangeSource: rangeNode.value, start };
  }

  calleeEnd(expr: jsep.CallExpression): number {
    const open = this.source.indexOf('(', this.startOf(expr));
    return open < 0 ? this.source.length : open;
  }

  versionLiteral(node: PolicyNode): void {
    if (node.kind !== 'literal') return;
    if (typeof node.value !== 'string' || validSemver(node.value) === null) {
      this.fail(`Invalid version ${node.raw}: not SemVer 2.0`, node.start);
    }
  }
}

/** Parses and validates a policy; throws {@link PolicyError}. The caller handles the empty policy. */
export function parsePolicy(source: string): ParsedPolicy {
  if (source.length > POLICY_LIMITS.maxLength) {
    throw policyError(
      source,
      `Policy longer than ${POLICY_LIMITS.maxLength} characters`,
      POLICY_LIMITS.maxLength,
    );
  }
  let expr: jsep.Expression;
  try {
    expr = parseExpression(source);
  } catch (e) {
    if (e instanceof ParseFailure) throw policyError(source, e.reason, e.offset);
    if (e instanceof PolicyError) throw e;
    if (e instanceof RangeError) throw policyError(source, 'Policy too deeply nested', 0);
    const jsepError = e as { description?: unknown; index?: unknown };
    if (typeof jsepError.description === 'string' && typeof jsepError.index === 'number') {
      throw describeJsepError(source, { description: jsepError.description, index: jsepError.index });
    }
    throw policyError(source, `Cannot parse policy: ${(e as Error).message}`, 0);
  }
  const validator = new Validator(source);
  const root = validator.node(expr);
  return { root, terms: validator.terms };
}
