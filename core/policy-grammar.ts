/**
 * The policy grammar on jsep (DESIGN §3): Ioto's operators, names with inner hyphens, regex literals
 * and `? :`, with the start offset of every token recorded for error columns.
 *
 * jsep keeps one grammar per process; it is configured here once, at module load, through its public
 * API (addBinaryOp, addUnaryOp, removeIdentifierChar, hooks.add, plugins.register). The policy
 * language owns that grammar: nothing else in Updraft parses with jsep (a unit test keeps it so).
 * Hooks use only the documented hook scope (`index`, `expr`, `code`, `gobbleSpaces`,
 * `gobbleNumericLiteral`, `gobbleArguments`).
 */
import regexPlugin from '@jsep-plugin/regex';
import ternaryPlugin from '@jsep-plugin/ternary';
import jsep from 'jsep';

export const POLICY_LIMITS = { maxTerms: 50, maxLength: 1000, maxRegexLength: 200, maxDepth: 32 } as const;
/** Names that would reach JavaScript internals; refused wherever a name may appear. */
export const FORBIDDEN_NAMES: ReadonlySet<string> = new Set(['constructor', '__proto__', 'prototype']);

/** The parser jsep passes to hooks as `this`. */
type Scope = jsep.HookScope;
interface HookEnv {
  node?: jsep.Expression;
}

/** A failure raised inside a hook, with the 0-based offset it concerns. */
export class ParseFailure extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(reason);
  }
}

/**
 * Precedences follow jsep's numbering (higher binds tighter). The Ioto operators sit with `==`;
 * `in` sits with `<`; `^` is power, above `*`, and right-associative like `**` in JavaScript.
 */
const BINARY_OPS: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 6,
  '!=': 6,
  '=~': 6,
  '!~': 6,
  '^=': 6,
  '^!=': 6,
  '$=': 6,
  '$!=': 6,
  '><': 6,
  '<>': 6,
  '<': 7,
  '<=': 7,
  '>': 7,
  '>=': 7,
  in: 7,
  '+': 9,
  '-': 9,
  '*': 10,
  '/': 10,
  '%': 10,
  '^': 11,
};

/** Offsets of the tokens being parsed, innermost last: its length is the nesting depth. */
let openTokens: number[] = [];
/** Start offsets of parsed nodes (jsep nodes carry no positions). */
let starts = new WeakMap<object, number>();

const CODE_DOT = 46;
const CODE_BACKTICK = 96;
const CODE_LBRACE = 123;
const CODE_LBRACKET = 91;
const CODE_LPAREN = 40;
const CODE_RPAREN = 41;
const CODE_QUESTION = 63;

function isNameStart(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 36;
}
function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}
function isNamePart(code: number): boolean {
  return isNameStart(code) || isDigit(code);
}

/** Reads a name with inner hyphens (`try-beta-features`): a `-` belongs to the name only between name characters. */
function readName(scope: Scope): string {
  const start = scope.index;
  const expr = scope.expr;
  let i = start + 1;
  for (;;) {
    const code = expr.charCodeAt(i);
    if (isNamePart(code)) i++;
    else if (code === 45 && isNamePart(expr.charCodeAt(i + 1))) i += 2;
    else break;
  }
  scope.index = i;
  const name = expr.slice(start, i);
  if (FORBIDDEN_NAMES.has(name)) throw new ParseFailure(`Access to "${name}" is not allowed`, start);
  return name;
}

/** Identifiers, keywords and the member/call chain after them, parsed here so `.` and `(` keep positions. */
function gobbleName(scope: Scope): jsep.Expression {
  const start = scope.index;
  const name = readName(scope);
  if (name === 'true' || name === 'false' || name === 'null') {
    const value = name === 'null' ? null : name === 'true';
    return { type: 'Literal', value, raw: name };
  }
  if (name === 'this' || name === 'new') throw new ParseFailure(`"${name}" is not allowed`, start);
  let node: jsep.Expression = { type: 'Identifier', name };
  for (;;) {
    const before = scope.index;
    scope.gobbleSpaces();
    const code = scope.code;
    if (code === CODE_DOT) {
      scope.index++;
      scope.gobbleSpaces();
      const propertyStart = scope.index;
      if (!isNameStart(scope.code)) throw new ParseFailure('Expected a property name after "."', scope.index);
      const property: jsep.Expression = { type: 'Identifier', name: readName(scope) };
      starts.set(property, propertyStart);
      node = { type: 'MemberExpression', computed: false, object: node, property };
    } else if (code === CODE_LBRACKET) {
      throw new ParseFailure('Computed member access is not allowed (use a.b)', scope.index);
    } else if (code === CODE_LPAREN) {
      scope.index++;
      // jsep's typings declare one expression; gobbleArguments returns the argument list.
      const args = scope.gobbleArguments(CODE_RPAREN) as unknown as jsep.Expression[];
      node = { type: 'CallExpression', callee: node, arguments: args };
    } else if (code === CODE_QUESTION && scope.expr.charCodeAt(scope.index + 1) === CODE_DOT) {
      if (!isDigit(scope.expr.charCodeAt(scope.index + 2))) {
        throw new ParseFailure(
          'Optional chaining is not needed: members of null are null (use a.b)',
          scope.index,
        );
      }
      scope.index = before;
      break;
    } else {
      scope.index = before;
      break;
    }
  }
  return node;
}

function gobblePolicyToken(this: Scope, env: HookEnv): void {
  if (openTokens.length > POLICY_LIMITS.maxDepth) {
    throw new ParseFailure(`Nesting deeper than ${POLICY_LIMITS.maxDepth} levels`, this.index);
  }
  openTokens.push(this.index);
  const code = this.code;
  // Numbers are parsed here because jsep's own number path skips the after-token hook that records positions.
  if (isNameStart(code)) env.node = gobbleName(this);
  else if (isDigit(code) || code === CODE_DOT) env.node = this.gobbleNumericLiteral();
  else if (code === CODE_BACKTICK) throw new ParseFailure('Template literals are not allowed', this.index);
  else if (code === CODE_LBRACE) throw new ParseFailure('Object literals are not allowed', this.index);
}

function recordStart(env: HookEnv): void {
  const start = openTokens.pop();
  if (env.node && start !== undefined && !starts.has(env.node)) starts.set(env.node, start);
}

/** Installs the policy grammar in jsep (once, at module load). */
function configureJsep(): void {
  jsep.removeAllUnaryOps();
  jsep.addUnaryOp('-');
  jsep.addUnaryOp('!');
  jsep.removeAllBinaryOps();
  for (const [op, precedence] of Object.entries(BINARY_OPS)) jsep.addBinaryOp(op, precedence, op === '^');
  // `$` and `_` names are read by gobbleName; keeping `$` out lets `$=` follow a name without a space.
  jsep.removeIdentifierChar('$');
  // First, so that our token hook sees every token (it counts nesting and records where tokens start).
  jsep.hooks.add('gobble-token', gobblePolicyToken, true);
  jsep.hooks.add('after-token', recordStart);
  jsep.plugins.register(regexPlugin as jsep.IPlugin, ternaryPlugin as jsep.IPlugin);
}
configureJsep();

/** Parses one expression with the policy grammar; throws ParseFailure, or jsep's error with its index. */
export function parseExpression(source: string): jsep.Expression {
  openTokens = [];
  starts = new WeakMap();
  return jsep(source);
}

/** The 0-based offset where the token that made `node` starts, when the last parse recorded one. */
export function tokenStart(node: object): number | undefined {
  return starts.get(node);
}
