/**
 * The rollout and report ledgers against real dynalite (issue 11, items 3–5): one outcome per
 * device and update, one start and one window slot per device however often it checks in, and
 * counters that match their records across a store connection reset after a write landed, followed
 * by a "kill" (the store never reachable again from that process) and a restart.
 */
import { describe, expect, it } from 'vitest';
import { updateFailures } from '#admin/index.ts';
import type { UpdateRecord } from '#core/types.ts';
import type { App } from '#functions/app.ts';
import { type Key, Table, type TransactWrite, type UpdateSpec } from '#functions/dynamo.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { keys } from '#functions/keys.ts';
import { ReportLedger } from '#functions/report-ledger.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { LOCAL_REGION } from '#local/cloud.ts';
import { checkin, report, seedUpdate, type TestCloud, useTestCloud } from '#test/support/cloud.ts';
import { appThrough, isWrite, KillingProxy } from '#test/support/dynamo-proxy.ts';

let cloud: TestCloud;

const freshProduct = useTestCloud('ledger', (started) => (cloud = started));

async function counters(update: UpdateRecord) {
  return (await readUpdate(cloud.table, update.product, update.id))!.counters;
}

describe('one outcome per device and update (11.3)', () => {
  it('a device reporting failed, rejected and applied counts once, and its success replaces its failure', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, {
      product: p.name,
      version: '2.0.0',
      abortThreshold: 50,
      abortMin: 2,
    });
    const dev = { id: 'one', product: p.name, version: '1.0.0' };
    expect((await checkin(cloud, dev, p.token)).json.update).toBe(update.id);
    const send = (status: string, success: boolean) =>
      report(cloud, { id: 'one', update: update.id, success, status }, p.token);

    expect((await send('failed', false)).status).toBe(200);
    expect((await send('rejected', false)).status).toBe(200);
    expect(await counters(update)).toMatchObject({ started: 1, success: 0, failure: 1 });
    // With --abort-min 2, one device's two failure reports are a sample of one: not paused.
    const stored = await cloud.table.get(keys.update(p.name, update.id), true);
    expect(stored?.paused).not.toBe(true);

    expect((await send('applied', true)).status).toBe(200);
    expect((await send('applied', true)).status).toBe(200);
    expect(await counters(update)).toMatchObject({ started: 1, success: 1, failure: 0 });
    const grant = await cloud.table.get(keys.grant(update.id, 'one'), true);
    expect(grant).toMatchObject({ outcome: 'success', outcomeVersion: 2 });
    // The transactions' marks are swept off the counters once committed.
    const shards = keys.updateCountersOf(p.name, update.id);
    const marks = async () => {
      const counters = [
        (await cloud.table.get(keys.update(p.name, update.id), true)) ?? {},
        ...(await cloud.table.query(shards.pk, shards.skPrefix, true)),
      ];
      return counters.flatMap((item) => Object.keys(item).filter((a) => a.startsWith('tx_')));
    };
    const deadline = Date.now() + 5000;
    while ((await marks()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(
      await marks(),
      'transaction marks still on the update or its counter shards 5 s after commit',
    ).toEqual([]);
  });

  it('reports of one device racing with different outcomes leave exactly one outcome counted', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect((await checkin(cloud, { id: 'race', product: p.name, version: '1.0.0' }, p.token)).status).toBe(
      200,
    );
    const answers = await Promise.all(
      (['failed', 'rejected', 'applied', 'failed', 'applied'] as const).map((status) =>
        report(cloud, { id: 'race', update: update.id, success: status === 'applied', status }, p.token),
      ),
    );
    for (const a of answers) expect(a.status).toBe(200);
    const c = await counters(update);
    expect(c.success + c.failure).toBe(1);
    const grant = await cloud.table.get(keys.grant(update.id, 'race'), true);
    expect(c.success).toBe(grant?.outcome === 'success' ? 1 : 0);
  });

  it('a duplicate report that reads an outcome still being written does not undo it', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect((await checkin(cloud, { id: 'dup', product: p.name, version: '1.0.0' }, p.token)).status).toBe(
      200,
    );
    expect((await report(cloud, { id: 'dup', update: update.id, success: false }, p.token)).status).toBe(200);
    const applied = { id: 'dup', update: update.id, success: true, status: 'applied' } as const;
    const grantKey = keys.grant(update.id, 'dup');
    // The duplicate arrives once the first report has moved the grant's outcome (its counters and
    // report record still to come), and runs until it completes or waits on a transaction.
    let duplicate: Promise<unknown> | undefined;
    let duplicateTransacts: () => void = () => {};
    const table = new (class extends Table {
      override async update(key: Key, spec: UpdateSpec) {
        const out = await super.update(key, spec);
        if (duplicate === undefined && key.sk === grantKey.sk && spec.set?.outcome === 'success') {
          const waiting = new Promise<void>((resolve) => {
            duplicateTransacts = resolve;
          });
          duplicate = ledger.record(update, applied, true);
          await Promise.race([duplicate, waiting]);
        }
        return out;
      }
      override transact(writes: readonly TransactWrite[], token: string) {
        duplicateTransacts();
        return super.transact(writes, token);
      }
    })({
      tableName: cloud.table.name,
      region: LOCAL_REGION,
      client: cloud.table.client,
      endpoint: cloud.table.endpoint,
    });
    const ledger = new ReportLedger(table, Date.now);
    expect(await ledger.record(update, applied, true)).toBe('changed');
    expect(await duplicate).toBe('unchanged');
    expect(await counters(update)).toMatchObject({ started: 1, success: 1, failure: 0 });
    expect(await cloud.table.get(grantKey, true)).toMatchObject({ outcome: 'success' });
  });
});

describe('duplicate checkins of one device (11.4)', () => {
  it('64 parallel checkins of one fresh id take one start and one rate slot', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', rate: 20, period: 3600 });
    const answers = await Promise.all(
      Array.from({ length: 64 }, () =>
        checkin(cloud, { id: 'dup', product: p.name, version: '1.0.0' }, p.token),
      ),
    );
    for (const a of answers) expect(a.status).toBe(200);
    expect(answers.some((a) => a.json.update === update.id)).toBe(true);
    expect((await counters(update)).started).toBe(1);
    const windows = await cloud.table.query(`R#${update.id}`, undefined, true);
    expect(windows.map((w) => w.n)).toEqual([1]);
    // The other 19 places of the window are still there for other devices.
    for (let i = 0; i < 19; i++) {
      const other = await checkin(cloud, { id: `other${i}`, product: p.name, version: '1.0.0' }, p.token);
      expect(other.json.update).toBe(update.id);
    }
    expect((await checkin(cloud, { id: 'late', product: p.name, version: '1.0.0' }, p.token)).text).toBe(
      '{}',
    );
  });
});

/**
 * Ledger writes only: the registry entry written beside a checkin, and the device counts and
 * intents of its transactions (tokens prefixed "dev", functions/aggregates.ts), are not part of it.
 */
const ledgerWrite = (op: string, body: Buffer) =>
  isWrite(op) && !/"DEV#|"AGG#|"(tx_)?dev[0-9a-f]{32}"/.test(body.toString());

const call = (app: App, path: string, body: object, token: string) =>
  app({ method: 'POST', path, headers: { authorization: token }, body: Buffer.from(JSON.stringify(body)) });

describe('counters and their records across a kill after any write (11.5)', () => {
  const killPoints = Array.from({ length: 7 }, (_, i) => i + 1); // 7: no kill

  it.each(killPoints)(
    'a grant killed after ledger write %i: the restart and retry count it once',
    async (n) => {
      const p = await freshProduct();
      const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', rate: 100, period: 3600 });
      const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint), ledgerWrite);
      await proxy.open();
      try {
        proxy.arm(n);
        const dev = { id: 'k', product: p.name, version: '1.0.0' };
        const first = await call(appThrough(cloud, proxy), '/tok/provision/update', dev, p.token);
        expect([200, 503]).toContain(first.status);
        // Six ledger writes: the TransactWriteItems probe (dynalite refuses it), intent, started,
        // window, grant, intent deleted (marks are removed later, in the background).
        expect(proxy.dead).toBe(n <= 6);
      } finally {
        await proxy.close();
      }
      await recoverIntents(cloud.table); // the restart
      const retry = await checkin(cloud, { id: 'k', product: p.name, version: '1.0.0' }, p.token);
      expect(retry.json.update).toBe(update.id);
      const grants = await cloud.table.query(keys.grantsOf(update.id).pk, undefined, true);
      const windows = await cloud.table.query(`R#${update.id}`, undefined, true);
      expect(grants).toHaveLength(1);
      expect((await counters(update)).started).toBe(1);
      expect(windows.map((w) => w.n)).toEqual([1]);
      expect(await cloud.table.query(keys.intents().pk, undefined, true)).toEqual([]);
    },
  );

  it('a transaction cut off in a process that lives on is finished or undone in the background', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', rate: 100, period: 3600 });
    const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint), ledgerWrite);
    await proxy.open();
    try {
      proxy.arm(4); // the probe, the intent, `started` and the window's count land; the grant does not
      const dev = { id: 'live', product: p.name, version: '1.0.0' };
      expect((await call(appThrough(cloud, proxy), '/tok/provision/update', dev, p.token)).status).toBe(503);
      proxy.revive();
      const deadline = Date.now() + 15_000;
      const intents = () => cloud.table.query(keys.intents().pk, undefined, true);
      while ((await intents()).length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      expect(await intents(), 'the intent was not replayed within 15 s').toEqual([]);
      // Rolled forward: the grant is written with the counters it took, and the retry finds it.
      expect((await counters(update)).started).toBe(1);
      expect(await cloud.table.query(keys.grantsOf(update.id).pk, undefined, true)).toHaveLength(1);
      const windows = await cloud.table.query(`R#${update.id}`, undefined, true);
      expect(windows.map((w) => w.n)).toEqual([1]);
      expect((await checkin(cloud, dev, p.token)).json.update).toBe(update.id);
      expect((await counters(update)).started).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('a first outcome killed after its grant write: the restart settles it and the retry counts it once, in its reason group', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    expect((await checkin(cloud, { id: 'f', product: p.name, version: '1.0.0' }, p.token)).status).toBe(200);
    const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint), ledgerWrite);
    await proxy.open();
    const failed = { id: 'f', update: update.id, success: false, error: 'boom' };
    try {
      proxy.arm(3); // the probe, the intent and the grant's outcome land
      expect(
        (await call(appThrough(cloud, proxy), '/tok/provision/updateReport', failed, p.token)).status,
      ).toBe(503);
    } finally {
      await proxy.close();
    }
    await recoverIntents(cloud.table); // settles the cut-off transaction (either way, the retry must count once)
    expect((await report(cloud, failed, p.token)).status).toBe(200);
    expect(await counters(update)).toMatchObject({ failure: 1 });
    const { reasons } = await updateFailures({ table: cloud.table }, { product: p.name, version: '2.0.0' });
    expect(reasons.map((r) => [r.error, r.devices])).toEqual([['boom', 1]]);
  });

  // 10: no kill (the report's transaction has nine ledger writes, see below).
  const reportKillPoints = Array.from({ length: 10 }, (_, i) => i + 1);

  it.each(reportKillPoints)(
    'a report killed after ledger write %i: the restart and retry count it once',
    async (n) => {
      const p = await freshProduct();
      const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
      expect((await checkin(cloud, { id: 'r', product: p.name, version: '1.0.0' }, p.token)).status).toBe(
        200,
      );
      expect((await report(cloud, { id: 'r', update: update.id, success: false }, p.token)).status).toBe(200);
      const proxy = new KillingProxy(new URL(cloud.file.dynamoEndpoint), ledgerWrite);
      await proxy.open();
      const applied = { id: 'r', update: update.id, success: true, status: 'applied' };
      try {
        proxy.arm(n);
        const first = await call(appThrough(cloud, proxy), '/tok/provision/updateReport', applied, p.token);
        expect([200, 503]).toContain(first.status);
        // Nine ledger writes: the TransactWriteItems probe, intent, outcome, counters, leaving the
        // failure group (its count, its member), the device's last outcome, report, intent
        // deleted (marks are removed later, in the background).
        expect(proxy.dead).toBe(n <= 9);
      } finally {
        await proxy.close();
      }
      await recoverIntents(cloud.table);
      expect((await report(cloud, applied, p.token)).status).toBe(200);
      expect((await report(cloud, applied, p.token)).status).toBe(200);
      expect(await counters(update)).toMatchObject({ started: 1, success: 1, failure: 0 });
      expect(await cloud.table.get(keys.grant(update.id, 'r'), true)).toMatchObject({ outcome: 'success' });
      expect(await cloud.table.get(keys.report(update.id, 'r', 'applied'), true)).toBeDefined();
      expect(await cloud.table.query(keys.intents().pk, undefined, true)).toEqual([]);
      const { reasons } = await updateFailures({ table: cloud.table }, { product: p.name, version: '2.0.0' });
      expect(reasons).toEqual([]); // the device left its failure group exactly once
    },
  );
});
