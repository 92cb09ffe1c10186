/**
 * The DynamoDB adapter: the only file that talks to DynamoDB. It turns SDK errors into ours
 * (a failed condition is a `false` result; an unreachable or throttled store is
 * StoreUnavailableError) and marshals our flat items by hand, which is smaller and faster than
 * util-dynamodb for the few attribute types we use. No transactions: dynalite has none.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { StoreUnavailableError } from './errors.ts';

export type Scalar = string | number | boolean | null;
export type Item = Record<string, Scalar>;
export type Key = { readonly pk: string; readonly sk: string };

export interface TableOptions {
  readonly tableName: string;
  readonly region: string;
  /** Custom endpoint (dynalite); AWS otherwise. */
  readonly endpoint?: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const UNAVAILABLE = new Set([
  'ResourceNotFoundException',
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
]);

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(code)
  ) {
    return true;
  }
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return UNAVAILABLE.has(err.name) || (status !== undefined && status >= 500);
}

function wrap(err: unknown): never {
  if (isUnavailable(err)) throw new StoreUnavailableError('dynamodb', { cause: err });
  throw err;
}

function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

export function marshal(item: Readonly<Record<string, Scalar | undefined>>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
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

export function unmarshal(attrs: Record<string, AttributeValue>): Item {
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

/** Builds `SET a = :a, b = :b` / `ADD c :c` expressions from plain objects. */
export interface UpdateSpec {
  readonly set?: Readonly<Record<string, Scalar | undefined>>;
  readonly remove?: readonly string[];
  readonly add?: Readonly<Record<string, number>>;
  /** Condition expression over `#name` and `:value` placeholders given in names/values. */
  readonly condition?: string;
  readonly names?: Readonly<Record<string, string>>;
  readonly values?: Readonly<Record<string, Scalar>>;
}

export class Table {
  readonly name: string;
  readonly client: DynamoDBClient;

  constructor(options: TableOptions) {
    this.name = options.tableName;
    this.client = new DynamoDBClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 2,
      // Fail fast so a device gets 503 + Retry-After instead of hanging its checkin.
      requestHandler: { connectionTimeout: 1000, requestTimeout: 5000 },
    });
  }

  async get(key: Key, consistent = false): Promise<Item | undefined> {
    try {
      const out = await this.client.send(
        new GetItemCommand({ TableName: this.name, Key: marshal(key), ConsistentRead: consistent }),
      );
      return out.Item ? unmarshal(out.Item) : undefined;
    } catch (err) {
      return wrap(err);
    }
  }

  /** All items of a partition (optionally with an sk prefix), following pagination. */
  async query(pk: string, skPrefix?: string, consistent = false): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, AttributeValue> | undefined;
    try {
      do {
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.name,
            KeyConditionExpression: skPrefix ? 'pk = :pk AND begins_with(sk, :p)' : 'pk = :pk',
            ExpressionAttributeValues: skPrefix
              ? { ':pk': { S: pk }, ':p': { S: skPrefix } }
              : { ':pk': { S: pk } },
            ExclusiveStartKey: start,
            ConsistentRead: consistent,
          }),
        );
        for (const i of out.Items ?? []) items.push(unmarshal(i));
        start = out.LastEvaluatedKey;
      } while (start);
    } catch (err) {
      return wrap(err);
    }
    return items;
  }

  /** Puts an item; with `ifAbsent`, only when no item has its key. Returns false when that condition failed. */
  async put(item: Key & Readonly<Record<string, Scalar | undefined>>, ifAbsent = false): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.name,
          Item: marshal(item),
          ...(ifAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      return wrap(err);
    }
  }

  /**
   * Updates an item. Returns the item's new attributes, or undefined when the condition failed.
   */
  async update(key: Key, spec: UpdateSpec): Promise<Item | undefined> {
    const names: Record<string, string> = { ...spec.names };
    const values: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(spec.values ?? {})) values[k] = toAttribute(v);
    const sets: string[] = [];
    const removes: string[] = [...(spec.remove ?? []).map((n) => `#${n}`)];
    const adds: string[] = [];
    let i = 0;
    for (const [name, v] of Object.entries(spec.set ?? {})) {
      names[`#${name}`] = name;
      if (v === undefined) {
        removes.push(`#${name}`);
        continue;
      }
      values[`:s${i}`] = toAttribute(v);
      sets.push(`#${name} = :s${i++}`);
    }
    for (const name of spec.remove ?? []) names[`#${name}`] = name;
    for (const [name, n] of Object.entries(spec.add ?? {})) {
      names[`#${name}`] = name;
      values[`:a${i}`] = { N: String(n) };
      adds.push(`#${name} :a${i++}`);
    }
    const expr = [
      sets.length ? `SET ${sets.join(', ')}` : '',
      removes.length ? `REMOVE ${removes.join(', ')}` : '',
      adds.length ? `ADD ${adds.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.name,
          Key: marshal(key),
          UpdateExpression: expr,
          ConditionExpression: spec.condition,
          ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
          ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? unmarshal(out.Attributes) : {};
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      return wrap(err);
    }
  }

  /** Deletes an item; with a condition, returns false when it failed. */
  async delete(
    key: Key,
    condition?: { expression: string; values?: Record<string, Scalar> },
  ): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.name,
          Key: marshal(key),
          ConditionExpression: condition?.expression,
          ExpressionAttributeValues: condition?.values
            ? Object.fromEntries(Object.entries(condition.values).map(([k, v]) => [k, toAttribute(v)]))
            : undefined,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      return wrap(err);
    }
  }

  /** Writes many items (25 per request), retrying unprocessed ones. */
  async putMany(items: ReadonlyArray<Key & Readonly<Record<string, Scalar | undefined>>>): Promise<void> {
    for (let at = 0; at < items.length; at += 25) {
      let requests = items.slice(at, at + 25).map((item) => ({ PutRequest: { Item: marshal(item) } }));
      try {
        for (let attempt = 0; requests.length > 0; attempt++) {
          if (attempt > 5) throw new StoreUnavailableError('dynamodb');
          const out = await this.client.send(
            new BatchWriteItemCommand({ RequestItems: { [this.name]: requests } }),
          );
          requests = (out.UnprocessedItems?.[this.name] ?? []) as typeof requests;
          if (requests.length) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        wrap(err);
      }
    }
  }

  /** Deletes every item of a partition. */
  async deletePartition(pk: string): Promise<void> {
    for (const item of await this.query(pk)) await this.delete({ pk, sk: String(item.sk) });
  }
}
