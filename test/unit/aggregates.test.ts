import { describe, expect, it } from 'vitest';
import { countWrites, shardOf } from '#functions/aggregates.ts';
import type { TransactWrite } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';

const product = 'p';
const id = 'dev-1';
const adds = (writes: TransactWrite[]) =>
  Object.fromEntries(writes.map((w) => ('key' in w ? [w.key.sk, w.update.add] : ['put', {}])));
const dayKey = (day: string) => keys.daySeen(product, day, shardOf(id)).sk;
const versionKey = keys.deviceCounts(product, shardOf(id)).sk;

describe('countWrites', () => {
  it('counts a new device on its version and on the day', () => {
    const writes = countWrites(product, id, undefined, {
      version: '1.0.0',
      lastSeen: '2026-12-01T10:00:00Z',
    });
    expect(adds(writes)).toEqual({
      [versionKey]: { v_1_2e0_2e0: 1 },
      [dayKey('2026-12-01')]: { seen: 1, v_1_2e0_2e0: 1 },
    });
  });

  it('writes only the day item for a daily checkin on the same version', () => {
    const before = { version: '1.0.0', day: '2026-11-30' };
    const writes = countWrites(product, id, before, { version: '1.0.0', lastSeen: '2026-12-01T10:00:00Z' });
    expect(adds(writes)).toEqual({ [dayKey('2026-12-01')]: { seen: 1, v_1_2e0_2e0: 1 } });
  });

  it('moves a device that upgrades later that day, on the version and on the day, not seen twice', () => {
    const before = { version: '1.0.0', day: '2026-12-01' };
    const writes = countWrites(product, id, before, { version: '1.1.0', lastSeen: '2026-12-01T12:00:00Z' });
    expect(adds(writes)).toEqual({
      [versionKey]: { v_1_2e1_2e0: 1, v_1_2e0_2e0: -1 },
      [dayKey('2026-12-01')]: { v_1_2e1_2e0: 1, v_1_2e0_2e0: -1 },
    });
  });

  it('writes nothing for a second checkin of the day on the same version', () => {
    const before = { version: '1.0.0', day: '2026-12-01' };
    expect(countWrites(product, id, before, { version: '1.0.0', lastSeen: '2026-12-01T23:00:00Z' })).toEqual(
      [],
    );
  });

  it('counts an entry written before aggregates on its own last day and version too', () => {
    const uncounted = { version: '0.9.0', day: '2026-11-20' };
    const writes = countWrites(
      product,
      id,
      undefined,
      { version: '1.0.0', lastSeen: '2026-12-01T10:00:00Z' },
      uncounted,
    );
    expect(adds(writes)[dayKey('2026-11-20')]).toEqual({ seen: 1, v_0_2e9_2e0: 1 });
  });

  it('keeps the items it writes small: day items expire after the retention, version shards hold no days', () => {
    const writes = countWrites(product, id, undefined, {
      version: '1.0.0',
      lastSeen: '2026-12-01T10:00:00Z',
    });
    for (const write of writes) {
      if (!('key' in write)) throw new Error('count writes are updates');
      if (write.key.sk === versionKey) expect(write.update.set).not.toHaveProperty('expires');
      else expect(write.update.set?.expires).toBe(Date.parse('2026-12-01') / 1000 + 91 * 86_400);
      expect(JSON.stringify(write.update).length).toBeLessThan(200);
    }
  });
});
