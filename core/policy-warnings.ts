/**
 * Warnings about a policy that compiles but cannot do what it seems to say, for `updraft policy check`
 * and publish. Today: arithmetic whose operand can never be a number (a string literal such as
 * `"X1" + "-pro"`, a comparison, a boolean, null) or a constant that is not a finite number
 * (`2^2000`, `0/0`). Such arithmetic fails every evaluation that reaches it (an evaluation error:
 * no match, a PolicyErrors metric), so it is reported before devices meet it. A warning, not a
 * refusal: DESIGN §3 refuses only what it lists (syntax, limits, unsafe regexes, bad versions).
 */
import type { PolicyNode } from './policy-parse.ts';
import { numericValue } from './policy-values.ts';

export interface PolicyWarning {
  readonly reason: string;
  /** 1-based column of the operand concerned. */
  readonly column: number;
}

/** Node kinds whose value is always a boolean (or null): never a number. */
const BOOLEAN_KINDS: ReadonlySet<PolicyNode['kind']> = new Set([
  'not',
  'logical',
  'compare',
  'text',
  'match',
  'in',
  'semver',
  'satisfies',
]);

const ARITHMETIC_FAILS = 'so this arithmetic always fails (an evaluation error: no match)';

/** Why `node` can never be a number, or null when it can be one. */
function neverNumber(node: PolicyNode): string | null {
  if (node.kind === 'literal') {
    const v = node.value;
    if (typeof v === 'number') return null;
    if (typeof v === 'string' && !Number.isNaN(numericValue(v))) return null;
    return `${node.raw} is not a number`;
  }
  if (BOOLEAN_KINDS.has(node.kind)) return 'a comparison or test gives true/false, not a number';
  if (node.kind === 'conditional') {
    const yes = neverNumber(node.consequent);
    return yes !== null && neverNumber(node.alternate) !== null ? 'neither branch of ?: is a number' : null;
  }
  return null;
}

/** The value of an expression of number literals alone, or undefined when it reads anything else. */
function constantValue(node: PolicyNode): number | undefined {
  if (node.kind === 'literal') {
    if (typeof node.value === 'number') return node.value;
    return typeof node.value === 'string' ? numericOrUndefined(node.value) : undefined;
  }
  if (node.kind === 'negate') {
    const n = constantValue(node.arg);
    return n === undefined ? undefined : -n;
  }
  if (node.kind !== 'arith') return undefined;
  const a = constantValue(node.left);
  const b = constantValue(node.right);
  if (a === undefined || b === undefined) return undefined;
  switch (node.op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    case '%':
      return a % b;
    default:
      return a ** b;
  }
}

function numericOrUndefined(s: string): number | undefined {
  const n = numericValue(s);
  return Number.isNaN(n) ? undefined : n;
}

function children(node: PolicyNode): readonly PolicyNode[] {
  switch (node.kind) {
    case 'literal':
    case 'ref':
      return [];
    case 'not':
    case 'negate':
      return [node.arg];
    case 'match':
    case 'in':
    case 'satisfies':
      return [node.subject];
    case 'conditional':
      return [node.test, node.consequent, node.alternate];
    case 'semver':
      return [node.left, node.op, node.right];
    default:
      return [node.left, node.right];
  }
}

function arithmeticWarnings(node: PolicyNode, out: PolicyWarning[]): void {
  const operands = node.kind === 'arith' ? [node.left, node.right] : node.kind === 'negate' ? [node.arg] : [];
  for (const operand of operands) {
    const why = neverNumber(operand);
    if (why !== null) out.push({ reason: `${why}, ${ARITHMETIC_FAILS}`, column: operand.start + 1 });
  }
  if (operands.length > 0 && out.length === 0) {
    const constant = constantValue(node);
    if (constant !== undefined && !Number.isFinite(constant)) {
      out.push({
        reason: `this constant is not a finite number, ${ARITHMETIC_FAILS}`,
        column: node.start + 1,
      });
    }
  }
}

/** Warnings for a validated policy tree, in source order of the operands concerned. */
export function policyWarnings(root: PolicyNode): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const visit = (node: PolicyNode): void => {
    const own: PolicyWarning[] = [];
    arithmeticWarnings(node, own);
    warnings.push(...own);
    // Inside arithmetic already reported, the inner parts would only repeat the same failure.
    if (own.length === 0) for (const child of children(node)) visit(child);
  };
  visit(root);
  return warnings.sort((a, b) => a.column - b.column);
}
