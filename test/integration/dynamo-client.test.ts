/**
 * DynamoClient against a scripted node:http server on loopback: which answers it retries, how many
 * times, and what reaches the caller. The protocol against real DynamoDB semantics is exercised by
 * every Table test against dynalite.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONFLICT_ATTEMPTS, transactThroughConflicts } from '#functions/conflicts.ts';
import { Table } from '#functions/dynamo.ts';
import { DynamoClient, DynamoError } from '#functions/dynamo-client.ts';

type Reply = (req: IncomingMessage, res: ServerResponse) => void;

const json =
  (status: number, body: object, crc?: number): Reply =>
  (_, res) => {
    const bytes = Buffer.from(JSON.stringify(body));
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-crc32': String(crc ?? crc32(bytes)),
    });
    res.end(bytes);
  };
const error = (status: number, type: string) =>
  json(status, { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: `${type} happened` });
const reset: Reply = (req) => req.socket.destroy();

let server: Server;
let endpoint: string;
let script: Reply[] = [];
let received: Array<{ target: string | undefined; body: string }> = [];
let client: DynamoClient;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ target: req.headers['x-amz-target'] as string | undefined, body });
      (script.shift() ?? json(200, {}))(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  client?.destroy();
  script = [];
  received = [];
});

function open(): DynamoClient {
  client = new DynamoClient({
    region: 'us-east-1',
    endpoint,
    credentials: () => ({ accessKeyId: 'AKID', secretAccessKey: 'SECRET' }),
  });
  return client;
}

describe('DynamoClient.send', () => {
  it('posts the input as JSON to the operation and returns the parsed answer', async () => {
    script = [json(200, { Item: { pk: { S: 'a' } } })];

    const out = await open().send('GetItem', { TableName: 't', Key: { pk: { S: 'a' } } });

    expect(out).toEqual({ Item: { pk: { S: 'a' } } });
    expect(received).toEqual([
      { target: 'DynamoDB_20120810.GetItem', body: '{"TableName":"t","Key":{"pk":{"S":"a"}}}' },
    ]);
  });

  it.each([
    ['5xx', error(500, 'InternalServerError')],
    ['throttling', error(400, 'ThrottlingException')],
    ['a dropped connection', reset],
    ['a body that fails its CRC32', json(200, { Item: {} }, 12345)],
  ])('retries %s and succeeds on the third attempt', async (_, failure) => {
    script = [failure, failure, json(200, { ok: true })];

    await expect(open().send('PutItem', {})).resolves.toEqual({ ok: true });
    expect(received).toHaveLength(3);
  });

  it('gives up after three attempts with the last error', async () => {
    script = [
      error(503, 'ServiceUnavailable'),
      error(503, 'ServiceUnavailable'),
      error(500, 'InternalServerError'),
    ];

    const err = await open()
      .send('Query', {})
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(DynamoError);
    expect(err).toMatchObject({ name: 'InternalServerError', status: 500, retryable: true });
    expect(received).toHaveLength(3);
  });

  it.each(['ConditionalCheckFailedException', 'ValidationException'])(
    'answers %s at once, without retrying',
    async (type) => {
      script = [error(400, type)];

      await expect(open().send('UpdateItem', {})).rejects.toMatchObject({
        name: type,
        message: `${type} happened`,
        status: 400,
        retryable: false,
      });
      expect(received).toHaveLength(1);
    },
  );

  it('never sends an ADD again after the connection dropped once the request was read', async () => {
    script = [reset, json(200, {})];

    const err = await open()
      .send('UpdateItem', { UpdateExpression: 'ADD #n :one' })
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ code: 'ECONNRESET' });
    expect(received).toHaveLength(1);
  });

  it('sends an ADD again after throttling, which applied nothing, and an idempotent write after a reset', async () => {
    const dynamo = open();
    script = [error(400, 'ThrottlingException'), json(200, { Attributes: {} })];
    await expect(dynamo.send('UpdateItem', {})).resolves.toEqual({ Attributes: {} });
    expect(received).toHaveLength(2);

    received = [];
    script = [reset, json(200, {})];
    await expect(dynamo.send('UpdateItem', {}, { idempotent: true })).resolves.toEqual({});
    expect(received).toHaveLength(2);
  });

  it('sends an ADD again after TransactionConflictException: an item in another transaction refused it, applying nothing', async () => {
    script = [error(400, 'TransactionConflictException'), json(200, { Attributes: {} })];

    await expect(open().send('UpdateItem', { UpdateExpression: 'ADD #n :one' })).resolves.toEqual({
      Attributes: {},
    });
    expect(received).toHaveLength(2);
  });

  it('does not send an ADD again after a 5xx, which may follow a write', async () => {
    script = [error(500, 'InternalServerError'), json(200, {})];

    await expect(open().send('UpdateItem', {})).rejects.toMatchObject({ name: 'InternalServerError' });
    expect(received).toHaveLength(1);
  });

  it('keeps the Node code of a connection that cannot be made', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    client = new DynamoClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: () => ({ accessKeyId: 'AKID', secretAccessKey: 'SECRET' }),
    });

    await expect(client.send('GetItem', {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('Table.transact on a store with TransactWriteItems', () => {
  const writes = [
    { key: { pk: 'P#a', sk: 'U#1' }, update: { add: { started: 1 }, condition: 'attribute_exists(pk)' } },
    { put: { pk: 'G#1', sk: 'dev', at: 'now' } },
  ];
  let table: Table;
  beforeAll(() => {
    table = new Table({
      tableName: 't',
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET' },
    });
  });
  afterAll(() => table.client.destroy());

  it('sends one TransactWriteItems with the token, the updates and the puts that must not exist', async () => {
    script = [json(200, {})];

    await expect(table.transact(writes, 'tok1')).resolves.toEqual({ ok: true });

    expect(received).toHaveLength(1);
    expect(received[0]!.target).toBe('DynamoDB_20120810.TransactWriteItems');
    const sent = JSON.parse(received[0]!.body);
    expect(sent.ClientRequestToken).toBe('tok1');
    expect(sent.TransactItems[0].Update).toMatchObject({
      TableName: 't',
      UpdateExpression: 'ADD #started :a0',
      ConditionExpression: 'attribute_exists(pk)',
    });
    expect(sent.TransactItems[1].Put).toMatchObject({
      Item: { pk: { S: 'G#1' }, sk: { S: 'dev' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  });

  it('names the writes whose condition failed when the transaction is cancelled', async () => {
    script = [
      json(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        message:
          'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]',
        CancellationReasons: [
          { Code: 'None' },
          { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
        ],
      }),
    ];

    await expect(table.transact(writes, 'tok2')).resolves.toEqual({ ok: false, failed: [1] });
  });

  it('throws TransactionConflictError when another transaction held an item: nothing applied, safe to resend', async () => {
    script = [
      json(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
        CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }],
      }),
    ];

    await expect(table.transact(writes, 'tok4')).rejects.toMatchObject({
      name: 'TransactionConflictError',
      mayHaveApplied: false,
    });
  });

  it('through conflicts: sent again with the same token after each TransactionConflict, applied by the last', async () => {
    const conflict = json(400, {
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
      CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }],
    });
    script = [...Array(CONFLICT_ATTEMPTS - 1).fill(conflict), json(200, {})];

    await expect(transactThroughConflicts(table, writes, 'tok5')).resolves.toEqual({ ok: true });
    expect(received.map((r) => JSON.parse(r.body).ClientRequestToken)).toEqual(
      Array(CONFLICT_ATTEMPTS).fill('tok5'),
    );

    script = Array(CONFLICT_ATTEMPTS).fill(conflict);
    received = [];
    await expect(transactThroughConflicts(table, writes, 'tok6')).rejects.toMatchObject({
      name: 'TransactionConflictError',
    });
    expect(received).toHaveLength(CONFLICT_ATTEMPTS);
  });

  it('sends it again with the same token after the connection dropped: the token makes it idempotent', async () => {
    script = [reset, json(200, {})];

    await expect(table.transact(writes, 'tok3')).resolves.toEqual({ ok: true });

    expect(received.map((r) => JSON.parse(r.body).ClientRequestToken)).toEqual(['tok3', 'tok3']);
  });
});
