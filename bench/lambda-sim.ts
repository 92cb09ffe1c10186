/**
 * `npm run load -- --lambda`: the checkin app as Lambda runs it, in this process, against the local
 * cloud's dynalite: `containers` app instances (no registry batching, counters batched as
 * functions/lambda.ts configures them), each serving one request at a time and flushing after every
 * request. Requests are spread over the containers at random and stamped with a simulated clock
 * advancing `rate` checkins per second (dynalite on 2 cores cannot take 1,160 real checkins/s of
 * transactions). Every item write is counted per key and simulated second, as DynamoDB would see
 * it: a transaction's writes once each (its embedded protocol's intents and marks are dynalite's
 * stand-in for TransactWriteItems, not counted), a batch's items once each.
 */

import { inPercentage } from '#core/rollout.ts';
import { createCloud } from '#functions/cloud.ts';
import { AGGREGATES } from '#functions/config.ts';
import type { TableClient } from '#functions/dynamo.ts';
import { DynamoClient } from '#functions/dynamo-client.ts';
import type { LocalCloudFile } from '#local/cloud-file.ts';

type Attrs = Record<string, { S?: string }>;

/** The keys a request writes (none for reads, intents, mark sweeps and the refused transaction probe). */
function writtenKeys(operation: string, input: Record<string, unknown>): string[] {
  const keyOf = (a: Attrs | undefined) => (a ? `${a.pk?.S}|${a.sk?.S}` : '');
  const isIntent = (a: Attrs | undefined) => a?.pk?.S === 'TX';
  if (operation === 'PutItem' || operation === 'DeleteItem') {
    const attrs = (input.Item ?? input.Key) as Attrs;
    return isIntent(attrs) ? [] : [keyOf(attrs)];
  }
  if (operation === 'UpdateItem') {
    const attrs = input.Key as Attrs;
    const names = Object.values((input.ExpressionAttributeNames ?? {}) as Record<string, string>);
    const sweep = names.length > 0 && names.every((n) => n.startsWith('tx_') || n === 'pk');
    return isIntent(attrs) || sweep ? [] : [keyOf(attrs)];
  }
  if (operation === 'BatchWriteItem') {
    const tables = Object.values(input.RequestItems as Record<string, { PutRequest: { Item: Attrs } }[]>);
    return tables.flat().map((r) => keyOf(r.PutRequest.Item));
  }
  return [];
}

export interface LambdaSimulation {
  readonly checkins: number;
  /** Reports sent (`reportApplied`), at the simulated instant of their checkin. */
  readonly reports: number;
  readonly simulatedPerSecond: number;
  readonly wallPerSecond: number;
  readonly errors: number;
  readonly writesPerCheckin: number;
  /** The busiest keys: their highest writes in one simulated second. */
  readonly topKeys: readonly {
    readonly key: string;
    readonly maxPerSecond: number;
    readonly writes: number;
  }[];
}

/** A client to the local cloud's dynalite that counts item writes per key and second of `clock`. */
function countingClient(file: LocalCloudFile, clock: () => number, start: number) {
  const perKey = new Map<string, Map<number, number>>();
  const inner = new DynamoClient({
    region: file.region,
    endpoint: file.dynamoEndpoint,
    credentials: () => file.credentials,
  });
  const client: TableClient = {
    async send<T>(
      operation: Parameters<TableClient['send']>[0],
      input: object,
      sendOptions?: { idempotent?: boolean },
    ) {
      const second = Math.floor((clock() - start) / 1000);
      const answer = await inner.send<T>(operation, input, sendOptions);
      for (const key of writtenKeys(operation, input as Record<string, unknown>)) {
        const seconds = perKey.get(key) ?? new Map<number, number>();
        seconds.set(second, (seconds.get(second) ?? 0) + 1);
        perKey.set(key, seconds);
      }
      return answer;
    },
    destroy: () => inner.destroy(),
  };
  const total = () =>
    [...perKey.values()].reduce((sum, s) => sum + [...s.values()].reduce((a, b) => a + b, 0), 0);
  return { client, perKey, total };
}

/** A container as functions/lambda.ts builds one. */
function lambdaContainer(file: LocalCloudFile, client: TableClient, clock: () => number) {
  return createCloud(
    { ...file, s3Endpoint: file.s3Endpoint, urlExpiresSeconds: 3600, updatesCacheSeconds: 30 },
    {
      metrics: () => ({ count() {}, async flush() {} }),
      log: { info() {}, warn() {}, error() {} },
      credentials: () => file.credentials,
      counterBatchMs: AGGREGATES.lambdaCounterBatchMs,
      tableClient: client,
      now: clock,
    },
  );
}

export async function simulateLambda(options: {
  readonly file: LocalCloudFile;
  readonly token: string;
  readonly body: (i: number) => string;
  readonly checkins: number;
  readonly rate: number;
  readonly containers: number;
  /** A device granted an update reports it applied, in the same container, at once. */
  readonly reportApplied?: boolean;
}): Promise<LambdaSimulation> {
  const { file } = options;
  const start = Date.now();
  let served = 0;
  const clock = () => start + (served * 1000) / options.rate;
  const { client, perKey } = countingClient(file, clock, start);
  const containers = Array.from({ length: options.containers }, () => lambdaContainer(file, client, clock));
  let errors = 0;
  let reports = 0;
  let next = 0;
  const began = performance.now();
  // Each container serves one request at a time, as Lambda does; which one is up to chance.
  await Promise.all(
    containers.map(async (container) => {
      while (next < options.checkins) {
        const body = options.body(next++);
        const send = (path: string, payload: string) =>
          container.app({
            method: 'POST',
            path,
            headers: { authorization: `Bearer ${options.token}` },
            body: Buffer.from(payload),
          });
        const answer = await send('/tok/provision/update', body);
        if (answer.status !== 200) errors++;
        await container.flush().catch(() => errors++);
        const offered =
          answer.status === 200 ? (JSON.parse(answer.body) as { update?: string }).update : undefined;
        if (options.reportApplied && offered !== undefined) {
          const { id } = JSON.parse(body) as { id: string };
          const applied = { id, update: offered, success: true, status: 'applied' };
          if ((await send('/tok/provision/updateReport', JSON.stringify(applied))).status !== 200) errors++;
          reports++;
          await container.flush().catch(() => errors++);
        }
        served++;
      }
    }),
  );
  const wallSeconds = (performance.now() - began) / 1000;
  const rows = [...perKey].map(([key, seconds]) => ({
    key,
    maxPerSecond: Math.max(...seconds.values()),
    writes: [...seconds.values()].reduce((a, b) => a + b, 0),
  }));
  rows.sort((a, b) => b.maxPerSecond - a.maxPerSecond);
  client.destroy();
  return {
    checkins: served,
    reports,
    simulatedPerSecond: options.rate,
    wallPerSecond: Math.round(served / wallSeconds),
    errors,
    writesPerCheckin: rows.reduce((sum, r) => sum + r.writes, 0) / Math.max(1, served),
    topKeys: rows.slice(0, 12),
  };
}

/**
 * Item writes of one request on each path, in one container flushing after it (the counters it
 * batches are written at most every AGGREGATES.lambdaCounterBatchMs, so their share per checkin
 * is about containers / (checkins/s × 10 s): ~0.02 at 1,160/s with 24 containers).
 */
export async function writesPerPath(
  file: LocalCloudFile,
  token: string,
  updates: { readonly granting: string; readonly grantingPercentage: number },
): Promise<Record<string, number>> {
  let now = Date.now();
  const { client, total } = countingClient(file, () => now, now);
  const [one, other] = [lambdaContainer(file, client, () => now), lambdaContainer(file, client, () => now)];
  // Every counter batch goes out before measuring, then none is due for 10 s.
  for (const c of [one, other]) await c.flush();
  const paths: Record<string, number> = {};
  const send = async (name: string, container: typeof one, path: string, body: object) => {
    await container.flush(); // what earlier requests left due is not this request's
    const before = total();
    const answer = await container.app({
      method: 'POST',
      path,
      headers: { authorization: `Bearer ${token}` },
      body: Buffer.from(JSON.stringify(body)),
    });
    await container.flush();
    if (answer.status !== 200) throw new Error(`${name}: answered ${answer.status} ${answer.body}`);
    paths[name] = total() - before;
    return JSON.parse(answer.body) as { update?: string };
  };
  const id = `path-${now}`;
  const device = { id, product: 'demo', version: '1.0.0', region: 'ap' }; // no update for it
  await send('checkin, new device', one, '/tok/provision/update', device);
  await send('checkin again, same container, < 1 h', one, '/tok/provision/update', device);
  await send('checkin again, another container, same day', other, '/tok/provision/update', device);
  now += 86_400_000;
  await send('first checkin of the day', one, '/tok/provision/update', device);
  now += 86_400_000;
  let n = 0;
  while (!inPercentage(updates.granting, `${id}-eu${n}`, updates.grantingPercentage)) n++;
  const eu = { ...device, id: `${id}-eu${n}`, region: 'eu' };
  const granted = await send('checkin, new device, granted', one, '/tok/provision/update', eu);
  if (granted.update === updates.granting) {
    const report = {
      id: eu.id,
      update: updates.granting,
      success: true,
      status: 'applied',
      version: '1.5.0',
    };
    await send('report applied (version moves)', one, '/tok/provision/updateReport', report);
  }
  client.destroy();
  return paths;
}
