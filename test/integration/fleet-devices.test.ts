/**
 * What builders see of their fleet, on real dynalite (issue 13, items 2, 3, 5): failures grouped
 * by reason as reports arrive, the paginated device list, one device's history, and the bounded
 * dry run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateFailures } from '#admin/index.ts';
import { createToken } from '#functions/tokens.ts';
import { checkin, report, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
let productSeq = 0;

beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(async () => {
  await cloud?.dispose();
});

async function freshProduct(): Promise<{ name: string; token: string }> {
  const name = `fleet${++productSeq}`;
  const { token } = await createToken(cloud.table, { product: name });
  return { name, token };
}

describe('failure reasons (13.2)', () => {
  it('groups failures by error with counts and latest devices; a device that then succeeds leaves its group', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const errors: Record<string, string | undefined> = {
      a: 'disk full',
      b: 'disk full',
      c: 'disk full',
      d: 'bad signature',
      e: undefined,
    };
    for (const [id, error] of Object.entries(errors)) {
      expect((await checkin(cloud, { id, product: p.name, version: '1.0.0' }, p.token)).json.update).toBe(
        update.id,
      );
      const body = { id, update: update.id, success: false, ...(error ? { error } : {}) };
      expect((await report(cloud, body, p.token)).status).toBe(200);
    }
    // The same failure again changes nothing.
    await report(cloud, { id: 'a', update: update.id, success: false, error: 'disk full' }, p.token);
    const selector = { product: p.name, version: '2.0.0' };
    const before = await updateFailures({ table: cloud.table }, selector);
    expect(before.reasons.map((r) => [r.error, r.devices])).toEqual([
      ['disk full', 3],
      ['', 1], // ties: the latest failure first
      ['bad signature', 1],
    ]);
    expect(before.reasons[0]?.latest.map((d) => d.id).sort()).toEqual(['a', 'b', 'c']);

    expect((await report(cloud, { id: 'b', update: update.id, success: true }, p.token)).status).toBe(200);
    const after = await updateFailures({ table: cloud.table }, selector);
    expect(after.reasons[0]).toMatchObject({ error: 'disk full', devices: 2 });
    expect(after.reasons[0]?.latest.map((d) => d.id).sort()).toEqual(['a', 'c']);
    expect(after.update.counters).toMatchObject({ success: 1, failure: 4 });
  });
});
