/**
 * The DynamoDB adapter: the only file that talks to DynamoDB (through functions/dynamo-client.ts).
 * It turns DynamoDB errors into ours (a failed condition is a `false` result; an unreachable or
 * throttled store is StoreUnavailableError) and marshals our flat items by hand (dynamo-marshal.ts).
 * `transact` writes several items together: TransactWriteItems where the store has it, the
 * protocol of embedded-transact.ts on dynalite, which has none.
 */
import { randomUUID } from 'node:crypto';
import {
  DynamoClient,
  DynamoError,
  type DynamoOperation,
  isNetworkError,
  mayHaveApplied,
} from './dynamo-client.ts';
import { type Attributes, marshal, toAttribute, unmarshal } from './dynamo-marshal.ts';
import { transactEmbedded } from './embedded-transact.ts';
import { StoreUnavailableError, TransactionConflictError } from './errors.ts';
import { type AwsCredentials, credentialsFromEnv } from './sigv4.ts';

export type Scalar = string | number | boolean | null;
export type Item = Record<string, Scalar>;
export type Key = { readonly pk: string; readonly sk: string };

/**
 * What Table sends requests through: our DynamoClient by default (the Lambda bundle), or another
 * implementation (the CLI's, over the AWS SDK) that throws DynamoError / network errors alike.
 */
export interface TableClient {
  /** `idempotent`: whether the request may be sent again after it may have reached the table. */
  send<T>(operation: DynamoOperation, input: object, options?: { readonly idempotent?: boolean }): Promise<T>;
  destroy(): void;
}

export interface TableOptions {
  readonly tableName: string;
  readonly region: string;
  /** Custom endpoint (dynalite); AWS otherwise. */
  readonly endpoint?: string;
  /** Default: the environment (credentialsFromEnv), which is what Lambda provides. */
  readonly credentials?: AwsCredentials | (() => AwsCredentials | Promise<AwsCredentials>);
  /** Sends the requests instead of a DynamoClient built from the options above. */
  readonly client?: TableClient;
}

/** Throttled, failing or unreachable; a missing table is a deployment gone wrong, not the device's fault. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof DynamoError) return err.retryable || err.name === 'ResourceNotFoundException';
  return isNetworkError(err);
}

function wrap(err: unknown): never {
  if (isUnavailable(err))
    throw new StoreUnavailableError('dynamodb', { cause: err, mayHaveApplied: mayHaveApplied(err) });
  throw err;
}

function isConditionFailure(err: unknown): boolean {
  return err instanceof DynamoError && err.name === 'ConditionalCheckFailedException';
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
  /**
   * Whether applying it twice does no harm (SET/REMOVE only, or a condition that fails the second
   * time), so a request that may have reached the store can be sent again. Default: no ADD.
   */
  readonly idempotent?: boolean;
}

type PutItem = Key & Readonly<Record<string, Scalar | undefined>>;

/** Identifies one transaction: DynamoDB's ClientRequestToken (≤ 36 characters), a safe attribute-name part. */
export function transactionToken(): string {
  return randomUUID().replaceAll('-', '');
}

/** One write of a transaction: a record that must not exist yet, or an update under its condition. */
export type TransactWrite =
  | { readonly put: PutItem }
  | {
      readonly key: Key;
      readonly update: UpdateSpec;
      /** Values to restore if the transaction is rolled back after this write (ADDs are undone by themselves). */
      readonly undoSet?: Readonly<Record<string, Scalar>>;
    };

/** `failed`: the indexes of the writes whose condition failed (the record existed, for a put). */
export type TransactResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly failed: readonly number[] };

interface Expression {
  UpdateExpression: string;
  ConditionExpression: string | undefined;
  ExpressionAttributeNames: Record<string, string> | undefined;
  ExpressionAttributeValues: Attributes | undefined;
}

/** `SET a = :a, b = :b` / `REMOVE c` / `ADD d :d` and the condition, from an UpdateSpec. */
function updateExpression(spec: UpdateSpec): Expression {
  const names: Record<string, string> = { ...spec.names };
  const values: Attributes = {};
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
  return {
    UpdateExpression: expr,
    ConditionExpression: spec.condition,
    ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
    ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
  };
}

/** Which sort keys a query reads: a prefix, or an inclusive range. */
export type SkCondition = string | { readonly from: string; readonly to: string };

function keyCondition(pk: string, sk: SkCondition | undefined) {
  if (sk === undefined || sk === '')
    return { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: pk } } };
  if (typeof sk === 'string')
    return {
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': { S: pk }, ':p': { S: sk } },
    };
  return {
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :a AND :b',
    ExpressionAttributeValues: { ':pk': { S: pk }, ':a': { S: sk.from }, ':b': { S: sk.to } },
  };
}

export class Table {
  readonly name: string;
  readonly client: TableClient;
  /** The custom endpoint (dynalite), undefined for AWS. */
  readonly endpoint: string | undefined;

  constructor(options: TableOptions) {
    this.name = options.tableName;
    this.endpoint = options.endpoint;
    const { credentials = credentialsFromEnv } = options;
    this.client =
      options.client ??
      new DynamoClient({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        credentials: typeof credentials === 'function' ? credentials : () => credentials,
      });
  }

  async get(key: Key, consistent = false): Promise<Item | undefined> {
    try {
      const out = await this.client.send<{ Item?: Attributes }>('GetItem', {
        TableName: this.name,
        Key: marshal(key),
        ConsistentRead: consistent,
      });
      return out.Item ? unmarshal(out.Item) : undefined;
    } catch (err) {
      return wrap(err);
    }
  }

  /**
   * Reads many items (100 per request, DynamoDB's most), retrying unprocessed keys: the items in
   * the order of `itemKeys`, undefined where none exists. Keys must be distinct.
   */
  async getMany(itemKeys: readonly Key[], consistent = false): Promise<(Item | undefined)[]> {
    const found = new Map<string, Item>();
    const nameOf = (key: { pk?: Scalar; sk?: Scalar }) => `${key.pk}\u0000${key.sk}`;
    for (let at = 0; at < itemKeys.length; at += 100) {
      let pending: Attributes[] = itemKeys.slice(at, at + 100).map((key) => marshal(key));
      try {
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt > 5) throw new StoreUnavailableError('dynamodb');
          const out = await this.client.send<{
            Responses?: Record<string, Attributes[]>;
            UnprocessedKeys?: Record<string, { Keys?: Attributes[] }>;
          }>('BatchGetItem', {
            RequestItems: { [this.name]: { Keys: pending, ConsistentRead: consistent } },
          });
          for (const attributes of out.Responses?.[this.name] ?? []) {
            const item = unmarshal(attributes);
            found.set(nameOf(item), item);
          }
          pending = out.UnprocessedKeys?.[this.name]?.Keys ?? [];
          if (pending.length) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        wrap(err);
      }
    }
    return itemKeys.map((key) => found.get(nameOf(key)));
  }

  /**
   * All items of a partition, following pagination: optionally only those whose sk starts with a
   * prefix, or lies between `from` and `to` (inclusive, one query for a run of sort keys).
   */
  async query(pk: string, sk?: SkCondition, consistent = false): Promise<Item[]> {
    const items: Item[] = [];
    let start: Attributes | undefined;
    try {
      do {
        const out = await this.client.send<{ Items?: Attributes[]; LastEvaluatedKey?: Attributes }>('Query', {
          TableName: this.name,
          ...keyCondition(pk, sk),
          ExclusiveStartKey: start,
          ConsistentRead: consistent,
        });
        for (const i of out.Items ?? []) items.push(unmarshal(i));
        start = out.LastEvaluatedKey;
      } while (start);
    } catch (err) {
      return wrap(err);
    }
    return items;
  }

  /**
   * One page of a partition: at most `limit` items after `start` (a previous page's `next`), in sk
   * order or, `descending`, the reverse. `next` is DynamoDB's LastEvaluatedKey: absent on the last page.
   */
  async queryPage(
    pk: string,
    page: {
      readonly limit: number;
      readonly start?: Key;
      readonly descending?: boolean;
      readonly consistent?: boolean;
    },
  ): Promise<{ items: Item[]; next?: Key }> {
    try {
      const out = await this.client.send<{ Items?: Attributes[]; LastEvaluatedKey?: Attributes }>('Query', {
        TableName: this.name,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
        ExclusiveStartKey: page.start ? marshal(page.start) : undefined,
        ScanIndexForward: !page.descending,
        Limit: page.limit,
        ConsistentRead: page.consistent ?? false,
      });
      const items = (out.Items ?? []).map(unmarshal);
      const last = out.LastEvaluatedKey ? unmarshal(out.LastEvaluatedKey) : undefined;
      return last ? { items, next: { pk: String(last.pk), sk: String(last.sk) } } : { items };
    } catch (err) {
      return wrap(err);
    }
  }

  /** Puts an item; with `ifAbsent`, only when no item has its key. Returns false when that condition failed. */
  async put(item: PutItem, ifAbsent = false): Promise<boolean> {
    try {
      await this.client.send('PutItem', {
        TableName: this.name,
        Item: marshal(item),
        ...(ifAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
      });
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
    try {
      const out = await this.client.send<{ Attributes?: Attributes }>(
        'UpdateItem',
        { TableName: this.name, Key: marshal(key), ...updateExpression(spec), ReturnValues: 'ALL_NEW' },
        { idempotent: spec.idempotent ?? spec.add === undefined },
      );
      return out.Attributes ? unmarshal(out.Attributes) : {};
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      return wrap(err);
    }
  }

  /**
   * Applies every write or none (DESIGN §5). `token` identifies the transaction: sent again with
   * the same token, it is applied once (DynamoDB's ClientRequestToken; the intent of the embedded
   * protocol). Stores without TransactWriteItems (dynalite) get the embedded protocol.
   */
  async transact(writes: readonly TransactWrite[], token: string): Promise<TransactResult> {
    if (this.#native === false) return transactEmbedded(this, writes, token);
    try {
      await this.client.send(
        'TransactWriteItems',
        { TransactItems: writes.map((w) => this.#transactItem(w)), ClientRequestToken: token },
        { idempotent: true },
      );
      this.#native = true;
      return { ok: true };
    } catch (err) {
      // Several first calls may probe at once: each of them falls back.
      if (err instanceof DynamoError && err.name === 'UnknownOperationException' && this.#native !== true) {
        this.#native = false;
        return transactEmbedded(this, writes, token);
      }
      if (err instanceof DynamoError && err.name === 'TransactionCanceledException') {
        const failed = err.cancellationReasons
          .map((code, i) => (code === 'ConditionalCheckFailed' ? i : -1))
          .filter((i) => i >= 0);
        if (failed.length > 0) return { ok: false, failed };
        // Another transaction held one of its items: nothing applied, the same token may go again.
        if (err.cancellationReasons.includes('TransactionConflict'))
          throw new TransactionConflictError('dynamodb', { cause: err });
        throw new StoreUnavailableError('dynamodb', { cause: err });
      }
      return wrap(err);
    }
  }

  #native: boolean | undefined;

  #transactItem(write: TransactWrite): object {
    if ('put' in write) {
      return {
        Put: {
          TableName: this.name,
          Item: marshal(write.put),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      };
    }
    return { Update: { TableName: this.name, Key: marshal(write.key), ...updateExpression(write.update) } };
  }

  /** Deletes an item; with a condition, returns false when it failed. */
  async delete(
    key: Key,
    condition?: { expression: string; names?: Record<string, string>; values?: Record<string, Scalar> },
  ): Promise<boolean> {
    try {
      await this.client.send('DeleteItem', {
        TableName: this.name,
        Key: marshal(key),
        ConditionExpression: condition?.expression,
        ExpressionAttributeNames: condition?.names,
        ExpressionAttributeValues: condition?.values
          ? Object.fromEntries(Object.entries(condition.values).map(([k, v]) => [k, toAttribute(v)]))
          : undefined,
      });
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
          const out = await this.client.send<{ UnprocessedItems?: Record<string, typeof requests> }>(
            'BatchWriteItem',
            { RequestItems: { [this.name]: requests } },
          );
          requests = out.UnprocessedItems?.[this.name] ?? [];
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
