/**
 * The CLI's SDK-backed table client (issue 11 item 9) against a tiny DynamoDB stand-in on node:http:
 * it corrects a 5-minute clock skew from the answer's Date header and retries once, maps DynamoDB
 * errors to the same domain results as the Lambda's client, and never repeats a request whose
 * connection dropped after it was written.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SdkTableClient } from '#cli/dynamo-sdk.ts';
import { Table } from '#functions/dynamo.ts';
import { StoreUnavailableError } from '#functions/errors.ts';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

/** Serves the `answers` in turn; returns the table and the X-Amz-Date of each request received. */
async function standIn(answers: Answer[]): Promise<{ table: Table; dates: number[] }> {
  const dates: number[] = [];
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(req.headers['x-amz-date']));
      dates.push(m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN);
      const answer = answers[dates.length - 1] ?? answers[answers.length - 1]!;
      answer(req, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = new SdkTableClient({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
  return { table: new Table({ tableName: 't', region: 'us-east-1', client }), dates };
}

function error(type: string, status = 400, date?: Date): Answer {
  return (_req, res) => {
    const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: type });
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      ...(date ? { date: date.toUTCString() } : {}),
    });
    res.end(body);
  };
}

const ok: Answer = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
  res.end('{}');
};

describe('the CLI table client over the AWS SDK', () => {
  it('corrects a clock 5 minutes behind the server and retries with the corrected X-Amz-Date', async () => {
    const serverTime = new Date(Date.now() + 5 * 60_000);
    const { table, dates } = await standIn([error('InvalidSignatureException', 400, serverTime), ok]);
    expect(await table.get({ pk: 'a', sk: 'b' })).toBeUndefined();
    expect(dates).toHaveLength(2);
    expect(Math.abs(dates[0]! - Date.now())).toBeLessThan(60_000);
    expect(Math.abs(dates[1]! - serverTime.getTime())).toBeLessThan(60_000);
    table.client.destroy();
  });

  it('maps DynamoDB errors to the same results as the Lambda client', async () => {
    const failed = await standIn([error('ConditionalCheckFailedException')]);
    expect(await failed.table.put({ pk: 'a', sk: 'b' }, true)).toBe(false);
    failed.table.client.destroy();
    server?.close();
    const missing = await standIn([error('ResourceNotFoundException')]);
    await expect(missing.table.get({ pk: 'a', sk: 'b' })).rejects.toBeInstanceOf(StoreUnavailableError);
    missing.table.client.destroy();
  });

  it('sends a write again that a transaction holding its item refused (TransactionConflictException)', async () => {
    const { table, dates } = await standIn([error('TransactionConflictException'), ok]);
    await table.update({ pk: 'u', sk: 'c' }, { add: { n: 1 } });
    expect(dates).toHaveLength(2);
    table.client.destroy();
  });

  it('reads which writes of a cancelled transaction failed their condition', async () => {
    const cancelled: Answer = (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
          message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
          CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Message: 'failed' }],
        }),
      );
    };
    const { table } = await standIn([cancelled]);
    const writes = [{ key: { pk: 'u', sk: 'c' }, update: { add: { n: 1 } } }, { put: { pk: 'g', sk: 'd' } }];
    expect(await table.transact(writes, 'token1')).toEqual({ ok: false, failed: [1] });
    table.client.destroy();
  });

  it('does not repeat a write whose connection dropped after it was sent', async () => {
    const { table, dates } = await standIn([(req) => req.socket.destroy(), ok]);
    await expect(table.update({ pk: 'a', sk: 'b' }, { add: { n: 1 } })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(dates).toHaveLength(1);
    table.client.destroy();
  });
});
