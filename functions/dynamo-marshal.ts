/**
 * Our flat items (functions/dynamo.ts `Item`) to DynamoDB's attribute values and back, by hand:
 * smaller and faster than util-dynamodb for the few attribute types we use.
 */
import type { Item, Scalar } from './dynamo.ts';

/**
 * The attribute types our items use. Items are flat (`Item`), so maps, lists and sets never occur;
 * an attribute of another type written by hand reads back as null.
 */
export interface AttributeValue {
  S?: string;
  N?: string;
  BOOL?: boolean;
  NULL?: boolean;
}

export type Attributes = Record<string, AttributeValue>;

export function marshal(item: Readonly<Record<string, Scalar | undefined>>): Attributes {
  const out: Attributes = {};
  for (const name in item) {
    const v = item[name];
    if (v === undefined) continue;
    out[name] = toAttribute(v);
  }
  return out;
}

export function toAttribute(v: Scalar): AttributeValue {
  switch (typeof v) {
    case 'string':
      return { S: v };
    case 'number':
      return { N: String(v) };
    case 'boolean':
      return { BOOL: v };
    default:
      return { NULL: true };
  }
}

export function unmarshal(attrs: Attributes): Item {
  const out: Item = {};
  for (const name in attrs) {
    const a = attrs[name]!;
    if (a.S !== undefined) out[name] = a.S;
    else if (a.N !== undefined) out[name] = Number(a.N);
    else if (a.BOOL !== undefined) out[name] = a.BOOL;
    else out[name] = null;
  }
  return out;
}
