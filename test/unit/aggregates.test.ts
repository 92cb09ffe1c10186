/**
 * Devices per day and version (issue 14: devices per version over time), pure: the counter writes
 * of countWrite applied to in-memory shard items, summed by sumDeviceCounts, against a model of
 * what each device ran each day. A device counts once a day, on the version it last had that day.
 */
import { describe, expect, it } from 'vitest';
import { type CountedState, countWrite, dayOf, sumDeviceCounts } from '#functions/aggregates.ts';
import { AGGREGATES } from '#functions/config.ts';
import type { Item, TransactWrite } from '#functions/dynamo.ts';

const DAY = 86_400_000;
const START = Date.parse('2026-03-01T08:00:00Z');

/** Shard items by sort key, as the table would hold them after the writes. */
class Shards {
  private readonly items = new Map<string, Item>();

  apply(write: TransactWrite | undefined): void {
    if (!write || !('update' in write)) return;
    const item = this.items.get(write.key.sk) ?? { ...write.key };
    for (const name of write.update.remove ?? []) delete item[name];
    for (const [name, value] of Object.entries(write.update.add ?? {}))
      item[name] = (typeof item[name] === 'number' ? item[name] : 0) + value;
    for (const [name, value] of Object.entries(write.update.set ?? {}))
      if (value !== undefined) item[name] = value;
    this.items.set(write.key.sk, item);
  }

  all(): Item[] {
    return [...this.items.values()];
  }
}

/** Devices checking in as writeCounted counts them: each write moves the device from what was counted. */
class Fleet {
  readonly shards = new Shards();
  private readonly counted = new Map<string, CountedState>();
  /** What each device last ran on each day: the truth the counts must tell. */
  readonly truth = new Map<string, Map<string, string>>();

  checkin(id: string, version: string, at: number): void {
    const lastSeen = new Date(at).toISOString();
    this.shards.apply(countWrite('p', id, this.counted.get(id), { version, lastSeen }));
    this.counted.set(id, { version, day: dayOf(at) });
    const day = this.truth.get(dayOf(at)) ?? new Map<string, string>();
    day.set(id, version);
    this.truth.set(dayOf(at), day);
  }

  /** Per day, latest first: devices per version as the model has them. */
  expected(): { day: string; versions: Record<string, number> }[] {
    return [...this.truth]
      .sort(([a], [b]) => (a < b ? 1 : -1))
      .map(([day, devices]) => {
        const versions: Record<string, number> = {};
        for (const version of devices.values()) versions[version] = (versions[version] ?? 0) + 1;
        return { day, versions };
      });
  }
}

describe('devices per day and version', () => {
  it('counts a device moving versions within a day once, on the version it moved to', () => {
    const fleet = new Fleet();
    fleet.checkin('a', '1.0.0', START);
    fleet.checkin('b', '1.0.0', START + 1000);
    fleet.checkin('a', '1.1.0', START + 2000); // a upgrades the same day
    fleet.checkin('a', '1.1.0', START + 3000); // and checks in again: nothing moves
    fleet.checkin('a', '1.1.0', START + DAY); // the next day, on 1.1.0 from the start
    fleet.checkin('b', '1.1.0', START + DAY + 1000); // b seen the next day first on 1.1.0
    fleet.checkin('c', '1.0.0', START + DAY + 2000);
    fleet.checkin('c', '1.1.0', START + DAY + 3000);
    fleet.checkin('c', '1.0.0', START + DAY + 4000); // c rolls back within the day
    const counts = sumDeviceCounts(fleet.shards.all(), START + DAY);
    expect(counts.versionsPerDay).toEqual([
      { day: '2026-03-02', versions: { '1.1.0': 2, '1.0.0': 1 } },
      { day: '2026-03-01', versions: { '1.0.0': 1, '1.1.0': 1 } },
    ]);
    expect(counts.seenPerDay).toEqual([
      { day: '2026-03-02', devices: 3 },
      { day: '2026-03-01', devices: 2 },
    ]);
    expect(Object.fromEntries(counts.versions.map((v) => [v.version, v.devices]))).toEqual({
      '1.0.0': 1,
      '1.1.0': 2,
    });
  });

  it('match what each device ran each day over random checkins of 40 devices in 10 days', () => {
    const fleet = new Fleet();
    const versions = ['1.0.0', '1.1.0', '2.0.0-rc.1', '2.0.0'];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let event = 0; event < 2000; event++) {
      const at = START + Math.floor((event / 2000) * 10 * DAY);
      fleet.checkin(`d${random(40)}`, versions[random(versions.length)]!, at);
    }
    const counts = sumDeviceCounts(fleet.shards.all(), START + 10 * DAY);
    expect(counts.versionsPerDay).toEqual(fleet.expected());
    for (const { day, versions: perVersion } of counts.versionsPerDay) {
      const seen = counts.seenPerDay.find((d) => d.day === day)?.devices;
      expect(
        Object.values(perVersion).reduce((sum, n) => sum + n, 0),
        day,
      ).toBe(seen);
    }
  });

  it('drops days past the retention: removed by later writes, and left out when read', () => {
    const fleet = new Fleet();
    const retention = AGGREGATES.retentionDays;
    fleet.checkin('old', '0.9.0', START); // no device of its shard on 0.9.0 writes again
    for (let day = 0; day <= retention + 3; day++) fleet.checkin('daily', '1.0.0', START + day * DAY);
    const firstDay = dayOf(START);
    const names = fleet.shards.all().flatMap((item) => Object.keys(item));
    // The daily device's version: its oldest days are removed as the retention passes them.
    expect(names.filter((n) => n.startsWith('dv_20260301_1'))).toEqual([]);
    const counts = sumDeviceCounts(fleet.shards.all(), START + (retention + 3) * DAY);
    expect(counts.versionsPerDay.map((d) => d.day)).not.toContain(firstDay);
    expect(counts.versionsPerDay).toHaveLength(retention + 1);
    expect(counts.versionsPerDay.at(-1)?.day).toBe(dayOf(START + 3 * DAY));
  });

  it('counts an entry written before aggregates on its own day and version, unless past the retention', () => {
    const shards = new Shards();
    const today = '2026-03-10T09:00:00.000Z';
    shards.apply(
      countWrite(
        'p',
        'x',
        undefined,
        { version: '1.1.0', lastSeen: today },
        { version: '1.0.0', day: '2026-03-08' },
      ),
    );
    shards.apply(
      countWrite(
        'p',
        'y',
        undefined,
        { version: '1.1.0', lastSeen: today },
        { version: '1.0.0', day: '2025-01-01' },
      ),
    );
    expect(sumDeviceCounts(shards.all(), Date.parse(today)).versionsPerDay).toEqual([
      { day: '2026-03-10', versions: { '1.1.0': 2 } },
      { day: '2026-03-08', versions: { '1.0.0': 1 } },
    ]);
  });
});
