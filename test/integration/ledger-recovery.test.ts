/**
 * Embedded transactions cut off by a store error while the process lives on (issue 11 item 5,
 * DESIGN §5): until the intent is replayed, other reports of the device see the outcome the cut-off
 * transaction wrote. Neither a report building on that outcome nor the device retrying the failed
 * report may leave counters that disagree with the grant, or lose the device's outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceReport, UpdateRecord } from '#core/types.ts';
import { type Key, Table, type UpdateSpec } from '#functions/dynamo.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { StoreUnavailableError } from '#functions/errors.ts';
import { keys } from '#functions/keys.ts';
import { ReportLedger } from '#functions/report-ledger.ts';
import { createToken } from '#functions/tokens.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { LOCAL_REGION } from '#local/cloud.ts';
import { checkin, report, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(async () => {
  await cloud?.dispose();
});

/** A table on the test cloud's dynalite whose first counter ADD of `success` fails before it is sent. */
class FailingCounterTable extends Table {
  failed = false;
  constructor() {
    super({
      tableName: cloud.table.name,
      region: LOCAL_REGION,
      client: cloud.table.client,
      endpoint: cloud.table.endpoint,
    });
  }
  override async update(key: Key, spec: UpdateSpec) {
    if (!this.failed && key.pk.startsWith('P#') && spec.add?.success === 1) {
      this.failed = true;
      throw new StoreUnavailableError('dynamodb');
    }
    return super.update(key, spec);
  }
}

/** A device granted a fresh update that has reported `failed`: its outcome is failure, counted once. */
async function failedDevice(id: string): Promise<UpdateRecord> {
  const product = `recovery-${id}`;
  const { token } = await createToken(cloud.table, { product });
  const update = await seedUpdate(cloud, { product, version: '2.0.0' });
  expect((await checkin(cloud, { id, product, version: '1.0.0' }, token)).status).toBe(200);
  expect((await report(cloud, { id, update: update.id, success: false }, token)).status).toBe(200);
  return update;
}

async function state(update: UpdateRecord, id: string) {
  const { success, failure } = (await readUpdate(cloud.table, update.product, update.id))!.counters;
  return { success, failure, outcome: (await cloud.table.get(keys.grant(update.id, id), true))?.outcome };
}

const applied = (update: UpdateRecord, id: string): DeviceReport => ({
  id,
  update: update.id,
  success: true,
  status: 'applied',
});

describe('a report transaction cut off by a store error, replayed later', () => {
  it('another report building on its outcome meanwhile leaves counters that match the grant', async () => {
    const update = await failedDevice('built-on');
    const cutOff = new ReportLedger(new FailingCounterTable(), Date.now);
    await expect(cutOff.record(update, applied(update, 'built-on'), true)).rejects.toThrow(
      StoreUnavailableError,
    );
    const rejected = { ...applied(update, 'built-on'), success: false, status: 'rejected' as const };
    await new ReportLedger(cloud.table, Date.now).record(update, rejected, false);
    await recoverIntents(cloud.table);
    expect(await state(update, 'built-on')).toEqual({ success: 0, failure: 1, outcome: 'failure' });
  });

  it('the device retrying the failed report keeps its success', async () => {
    const update = await failedDevice('retry');
    const cutOff = new ReportLedger(new FailingCounterTable(), Date.now);
    const ledger = new ReportLedger(cloud.table, Date.now);
    await expect(cutOff.record(update, applied(update, 'retry'), true)).rejects.toThrow(
      StoreUnavailableError,
    );
    // The retry comes before the replay: answered 503 (retry later), or recorded, but never lost.
    await ledger.record(update, applied(update, 'retry'), true).catch((err: unknown) => {
      expect(err).toBeInstanceOf(StoreUnavailableError);
    });
    await recoverIntents(cloud.table);
    await ledger.record(update, applied(update, 'retry'), true);
    expect(await state(update, 'retry')).toEqual({ success: 1, failure: 0, outcome: 'success' });
  });
});
