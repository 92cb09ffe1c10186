/** `updraft policy check`: a validated policy tree as an indented, human-readable outline. */
import type { LiteralValue, PolicyNode } from './policy-parse.ts';

const OPERATOR_NAMES: Record<string, string> = {
  '&&': 'and (stops at the first false)',
  '||': 'or (stops at the first true)',
  '==': 'equals',
  '!=': 'does not equal',
  '<': 'less than',
  '<=': 'less than or equal',
  '>': 'greater than',
  '>=': 'greater than or equal',
  '+': 'plus',
  '-': 'minus',
  '*': 'times',
  '/': 'divided by',
  '%': 'remainder',
  '^': 'to the power',
  '^=': 'starts with',
  '^!=': 'does not start with',
  '$=': 'ends with',
  '$!=': 'does not end with',
  '><': 'contains',
  '<>': 'does not contain',
};

function literalText(value: LiteralValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

function lines(node: PolicyNode, depth: number, out: string[]): void {
  const pad = '  '.repeat(depth);
  const col = `  [column ${node.start + 1}]`;
  switch (node.kind) {
    case 'literal':
      out.push(`${pad}${literalText(node.value)}${col}`);
      return;
    case 'ref':
      out.push(`${pad}property ${node.path.join('.')} (null when the device does not send it)${col}`);
      return;
    case 'not':
      out.push(`${pad}not${col}`);
      lines(node.arg, depth + 1, out);
      return;
    case 'negate':
      out.push(`${pad}negative of${col}`);
      lines(node.arg, depth + 1, out);
      return;
    case 'logical':
    case 'arith':
    case 'text':
    case 'compare': {
      const numeric = node.kind === 'compare' ? ', numerically when both are numbers or numeric strings' : '';
      out.push(`${pad}${node.op}  ${OPERATOR_NAMES[node.op] ?? node.op}${numeric}${col}`);
      lines(node.left, depth + 1, out);
      lines(node.right, depth + 1, out);
      return;
    }
    case 'match':
      out.push(
        `${pad}${node.negate ? '!~  does not match' : '=~  matches'} ${node.raw} (${node.regex.engine} engine)${col}`,
      );
      lines(node.subject, depth + 1, out);
      return;
    case 'in':
      out.push(`${pad}in  one of ${JSON.stringify(node.values)}${col}`);
      lines(node.subject, depth + 1, out);
      return;
    case 'conditional':
      out.push(`${pad}?:  if / then / else${col}`);
      lines(node.test, depth + 1, out);
      lines(node.consequent, depth + 1, out);
      lines(node.alternate, depth + 1, out);
      return;
    case 'semver':
      out.push(`${pad}semver()  compares two versions by SemVer 2.0 precedence${col}`);
      lines(node.left, depth + 1, out);
      lines(node.op, depth + 1, out);
      lines(node.right, depth + 1, out);
      return;
    case 'satisfies':
      out.push(`${pad}satisfies()  version is in range ${JSON.stringify(node.rangeSource)}${col}`);
      lines(node.subject, depth + 1, out);
      return;
  }
}

export function explainPolicy(root: PolicyNode, isDefault: boolean): string {
  const out: string[] = isDefault
    ? ['default policy: offer the update to devices running an older version']
    : [];
  lines(root, 0, out);
  return out.join('\n');
}
