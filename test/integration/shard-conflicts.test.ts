/**
 * Count shard conflicts (issue 13, DynamoDB's TransactionConflict): a proxy in front of dynalite
 * answers TransactWriteItems as DynamoDB does when another transaction holds the shard, a set
 * number of times per transaction token; past that it forwards them to dynalite, whose refusal
 * makes the cloud fall back to the embedded transaction protocol, with the same token. Checkins
 * must answer 200 either way and the device counts stay exact.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readDeviceCounts } from '#functions/aggregates.ts';
import type { App } from '#functions/app.ts';
import { createCloud } from '#functions/cloud.ts';
import { CONFLICT_ATTEMPTS } from '#functions/conflicts.ts';
import { keys } from '#functions/keys.ts';
import type { TestCloud } from '#test/support/cloud.ts';
import { useTestCloud } from '#test/support/cloud.ts';
import { FaultyDynamoProxy } from '#test/support/dynamo-proxy.ts';

let cloud: TestCloud;
const freshProduct = useTestCloud('conflict', (started) => (cloud = started));

/** Cancels the first `conflicts` sends of every transaction token with TransactionConflict. */
class ConflictingProxy extends FaultyDynamoProxy {
  conflicts = 0;
  readonly sends = new Map<string, number>();
  protected fate(): undefined {
    return undefined;
  }
  protected override answer(op: string, body: Buffer) {
    if (op !== 'TransactWriteItems') return undefined;
    const { ClientRequestToken: token, TransactItems: items } = JSON.parse(body.toString()) as {
      ClientRequestToken: string;
      TransactItems: unknown[];
    };
    const sent = (this.sends.get(token) ?? 0) + 1;
    this.sends.set(token, sent);
    if (sent > this.conflicts) return undefined;
    return {
      status: 400,
      body: {
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
        CancellationReasons: items.map((_, i) => ({ Code: i === 0 ? 'TransactionConflict' : 'None' })),
      },
    };
  }
}

let proxy: ConflictingProxy;
beforeEach(async () => {
  proxy = new ConflictingProxy(new URL(cloud.file.dynamoEndpoint));
  await proxy.open();
});
afterEach(() => proxy.close());

/** A container as Lambda runs one, through the proxy, that keeps its metrics and warnings. */
function container() {
  const metrics: string[] = [];
  const warnings: Record<string, unknown>[] = [];
  const parts = createCloud(
    {
      ...cloud.file,
      dynamoEndpoint: proxy.url,
      s3Endpoint: cloud.s3Url,
      urlExpiresSeconds: 3600,
      updatesCacheSeconds: 0,
    },
    {
      metrics: () => ({ count: (_product, name) => void metrics.push(name), async flush() {} }),
      log: { info() {}, warn: (message, fields) => void warnings.push({ message, ...fields }), error() {} },
      credentials: () => cloud.file.credentials,
    },
  );
  return { app: parts.app, metrics, warnings };
}

function checkinOn(app: App, token: string, device: object) {
  return app({
    method: 'POST',
    path: '/tok/provision/update',
    headers: { authorization: `Bearer ${token}` },
    body: Buffer.from(JSON.stringify(device)),
  });
}

const versionsOf = async (product: string) =>
  Object.fromEntries(
    (await readDeviceCounts(cloud.table, product)).versions.map((v) => [v.version, v.devices]),
  );

describe('count shard conflicts on a store with TransactWriteItems', () => {
  it('are sent again with the same token until through: every checkin answers 200, counted once', async () => {
    const p = await freshProduct();
    proxy.conflicts = CONFLICT_ATTEMPTS - 1;
    for (let i = 0; i < 6; i++) {
      // A fresh container each: its first transaction probes the store (dynalite refuses, then
      // the embedded protocol takes the same token).
      const answer = await checkinOn(container().app, p.token, {
        id: `c${i}`,
        product: p.name,
        version: '1.0.0',
      });
      expect(answer.status, answer.body).toBe(200);
    }
    expect([...proxy.sends.values()]).toEqual(Array(6).fill(CONFLICT_ATTEMPTS));
    expect(await versionsOf(p.name)).toEqual({ '1.0.0': 6 });
    const counts = await readDeviceCounts(cloud.table, p.name);
    expect(counts.seenPerDay).toEqual([
      { day: new Date().toISOString().slice(0, 10), devices: 6, versions: { '1.0.0': 6 } },
    ]);
  });

  it('still conflicted after the bound: answered 200, nothing written, counted as a metric and logged once; the next checkin counts it', async () => {
    const p = await freshProduct();
    const setup = container();
    await checkinOn(setup.app, p.token, { id: 'mover', product: p.name, version: '1.0.0' });
    expect(await versionsOf(p.name)).toEqual({ '1.0.0': 1 });

    proxy.conflicts = Number.POSITIVE_INFINITY;
    proxy.sends.clear();
    const busy = container();
    const devices = ['n0', 'n1', 'n2'].map((id) => ({ id, product: p.name, version: '1.0.0' }));
    for (const device of [...devices, { id: 'mover', product: p.name, version: '1.1.0' }]) {
      const answer = await checkinOn(busy.app, p.token, device);
      expect(answer.status, answer.body).toBe(200);
    }
    expect([...proxy.sends.values()]).toEqual(Array(4).fill(CONFLICT_ATTEMPTS));
    expect(busy.metrics.filter((m) => m === 'RegistryConflicts')).toHaveLength(4);
    expect(busy.warnings).toHaveLength(1);
    expect(busy.warnings[0]).toMatchObject({ product: p.name, entries: 1 });
    expect(await cloud.table.get(keys.device(p.name, 'n0'), true)).toBeUndefined();
    expect((await cloud.table.get(keys.device(p.name, 'mover'), true))?.version).toBe('1.0.0');
    expect(await versionsOf(p.name)).toEqual({ '1.0.0': 1 });

    // The conflicts pass; the same container's next checkins write and count what was left.
    proxy.conflicts = 0;
    for (const device of [...devices, { id: 'mover', product: p.name, version: '1.1.0' }]) {
      expect((await checkinOn(busy.app, p.token, device)).status).toBe(200);
    }
    expect(await versionsOf(p.name)).toEqual({ '1.0.0': 3, '1.1.0': 1 });
    expect((await readDeviceCounts(cloud.table, p.name)).devices).toBe(4);
  });
});
