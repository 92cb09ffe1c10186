import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { baseUpdateId, inPercentage, offeredUpdateId, rateWindow, rolloutBucket } from '#core/rollout.ts';

const deviceIds = Array.from({ length: 100_000 }, (_, i) => `device-${i.toString(36)}`);

describe('rolloutBucket', () => {
  it('is the first 4 bytes of sha256(update ":" device), big-endian, mod 10000', () => {
    // Independent computation of one bucket, to pin the format every device cloud must share.
    const digest = createHash('sha256').update('upd-1:dev-1').digest();
    const expected = (digest[0]! * 2 ** 24 + digest[1]! * 2 ** 16 + digest[2]! * 2 ** 8 + digest[3]!) % 10000;
    expect(rolloutBucket('upd-1', 'dev-1')).toBe(expected);
  });

  it('is deterministic and within 0–9999', () => {
    for (const id of deviceIds.slice(0, 1000)) {
      const b = rolloutBucket('u', id);
      expect(b).toBe(rolloutBucket('u', id));
      expect(Number.isInteger(b) && b >= 0 && b < 10000).toBe(true);
    }
  });

  it('differs between updates, so the same devices are not always first', () => {
    const a = deviceIds.slice(0, 1000).map((id) => rolloutBucket('update-a', id));
    const b = deviceIds.slice(0, 1000).map((id) => rolloutBucket('update-b', id));
    expect(a.filter((x, i) => x === b[i]).length).toBeLessThan(10);
  });
});

describe('inPercentage', () => {
  it('treats undefined and >= 100 as everyone, <= 0 as no one', () => {
    expect(deviceIds.slice(0, 1000).every((id) => inPercentage('u', id, undefined))).toBe(true);
    expect(deviceIds.slice(0, 1000).every((id) => inPercentage('u', id, 100))).toBe(true);
    expect(deviceIds.slice(0, 1000).some((id) => inPercentage('u', id, 0))).toBe(false);
  });

  it('is monotonic: devices in at 10% stay in at 30%', () => {
    const sample = deviceIds.slice(0, 20_000);
    const at10 = sample.filter((id) => inPercentage('update-7', id, 10));
    expect(at10.length).toBeGreaterThan(1000);
    expect(at10.every((id) => inPercentage('update-7', id, 30))).toBe(true);
  });

  it('selects within ±1% (absolute) of the target over 100k ids', () => {
    const buckets = deviceIds.map((id) => rolloutBucket('rollout-x', id));
    for (const target of [1, 10, 25, 50, 90]) {
      // inPercentage is bucket < target * 100; checked on a sample, counted on all from the buckets.
      for (let i = 0; i < 1000; i++) {
        expect(inPercentage('rollout-x', deviceIds[i]!, target)).toBe(buckets[i]! < target * 100);
      }
      const share = (buckets.filter((b) => b < target * 100).length / buckets.length) * 100;
      expect(Math.abs(share - target)).toBeLessThan(1);
    }
  });

  it('counts whole buckets, immune to float error in percentage * 100', () => {
    // 0.29 * 100 is 28.999999999999996 and 0.07 * 100 is 7.000000000000001: both must mean 29 and 7 buckets.
    const withBucket = (n: number) => deviceIds.find((id) => rolloutBucket('f', id) === n)!;
    expect(inPercentage('f', withBucket(28), 0.29)).toBe(true);
    expect(inPercentage('f', withBucket(29), 0.29)).toBe(false);
    expect(inPercentage('f', withBucket(6), 0.07)).toBe(true);
    expect(inPercentage('f', withBucket(7), 0.07)).toBe(false);
  });
});

describe('rateWindow', () => {
  it('is floor(now / period)', () => {
    expect(rateWindow(0, 60)).toBe(0);
    expect(rateWindow(59_999, 60)).toBe(0);
    expect(rateWindow(60_000, 60)).toBe(1);
    expect(rateWindow(1_700_000_000_000, 3600)).toBe(472_222);
  });

  it('refuses a non-positive period', () => {
    expect(() => rateWindow(1, 0)).toThrow(ValidationError);
    expect(() => rateWindow(1, -5)).toThrow('Invalid period -5: use a positive number of seconds');
  });
});

describe('offeredUpdateId / baseUpdateId', () => {
  it('names a retried update with its retry count, and reads it back', () => {
    expect(offeredUpdateId('abc234', undefined)).toBe('abc234');
    expect(offeredUpdateId('abc234', 0)).toBe('abc234');
    expect(offeredUpdateId('abc234', 3)).toBe('abc234:r3');
    expect(baseUpdateId('abc234:r3')).toBe('abc234');
    expect(baseUpdateId('abc234')).toBe('abc234');
    // Only a trailing suffix is one: ids may hold colons of their own.
    expect(baseUpdateId('a:r1b')).toBe('a:r1b');
  });
});
