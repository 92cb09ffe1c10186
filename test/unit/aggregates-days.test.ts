/**
 * Devices per day and version (issue 14: devices per version over time), pure: the counter writes
 * of countWrites applied to in-memory items over random checkins of a small fleet, summed per day
 * as readDeviceCounts sums the day items, against a model of what each device ran each day. A
 * device counts once a day, on the version of its latest checkin that day.
 */
import { describe, expect, it } from 'vitest';
import { type CountedState, countWrites, dayOf } from '#functions/aggregates.ts';
import type { Item, TransactWrite } from '#functions/dynamo.ts';

const DAY = 86_400_000;
const START = Date.parse('2026-03-01T08:00:00Z');

/** Items by sort key, as the table would hold them after the writes. */
function apply(items: Map<string, Item>, write: TransactWrite): void {
  if (!('update' in write)) throw new Error('count writes are updates');
  const item = items.get(write.key.sk) ?? { ...write.key };
  for (const [name, value] of Object.entries(write.update.add ?? {}))
    item[name] = (typeof item[name] === 'number' ? item[name] : 0) + value;
  items.set(write.key.sk, item);
}

/** Per day (`Y#<day>#<shard>` items), latest first: devices seen and by version (`v_<version>`). */
function perDay(items: Map<string, Item>) {
  const days = new Map<string, { devices: number; versions: Record<string, number> }>();
  for (const [sk, item] of items) {
    const day = /^Y#(\d{4}-\d\d-\d\d)#/.exec(sk)?.[1];
    if (!day) continue;
    const sums = days.get(day) ?? { devices: 0, versions: {} };
    for (const [name, value] of Object.entries(item)) {
      if (typeof value !== 'number') continue;
      if (name === 'seen') sums.devices += value;
      if (!name.startsWith('v_')) continue;
      const version = name
        .slice(2)
        .replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      sums.versions[version] = (sums.versions[version] ?? 0) + value;
    }
    days.set(day, sums);
  }
  return [...days]
    .sort(([a], [b]) => (a < b ? 1 : -1))
    .map(([day, { devices, versions }]) => ({
      day,
      devices,
      versions: Object.fromEntries(Object.entries(versions).filter(([, n]) => n !== 0)),
    }));
}

describe('devices per day and version', () => {
  it('match what each device ran each day over 2,000 random checkins of 40 devices in 10 days', () => {
    const items = new Map<string, Item>();
    const counted = new Map<string, CountedState>();
    const truth = new Map<string, Map<string, string>>();
    const versions = ['1.0.0', '1.1.0', '2.0.0-rc.1', '2.0.0+build.7'];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let event = 0; event < 2000; event++) {
      const at = START + Math.floor((event / 2000) * 10 * DAY);
      const id = `d${random(40)}`;
      const version = versions[random(versions.length)]!;
      for (const write of countWrites('p', id, counted.get(id), {
        version,
        lastSeen: new Date(at).toISOString(),
      }))
        apply(items, write);
      counted.set(id, { version, day: dayOf(at) });
      const day = truth.get(dayOf(at)) ?? new Map<string, string>();
      truth.set(dayOf(at), day.set(id, version));
    }
    const expected = [...truth]
      .sort(([a], [b]) => (a < b ? 1 : -1))
      .map(([day, devices]) => {
        const byVersion: Record<string, number> = {};
        for (const version of devices.values()) byVersion[version] = (byVersion[version] ?? 0) + 1;
        return { day, devices: devices.size, versions: byVersion };
      });
    expect(expected).toHaveLength(11); // 10 days from 08:00 touch 11 dates
    expect(perDay(items)).toEqual(expected);
  });
});
