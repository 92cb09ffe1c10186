import { describe, expect, it } from 'vitest';
import {
  CHECKIN_BACKOFF_BASE_MS,
  CHECKIN_BACKOFF_CAP_MS,
  dueAt,
  MAX_SERVER_NEXT_CHECKIN,
  MIN_SERVER_NEXT_CHECKIN,
  nextAfterCheckin,
  nextAfterFailure,
  recordUpdateFailure,
  updateHeldBack,
} from '#agent/schedule.ts';

const NOW = Date.UTC(2025, 0, 1);
const DAY = { period: 86_400, jitter: 3600 };
const HOUR_MS = 3_600_000;

describe('nextAfterCheckin', () => {
  it.each([
    [0, NOW + 86_400_000],
    [0.5, NOW + 86_400_000 + 1_800_000],
    [0.999999, NOW + 86_400_000 + 3_599_996],
  ])('period plus random jitter (random %f)', (r, expected) => {
    expect(nextAfterCheckin(NOW, DAY, () => r)).toBe(expected);
  });

  it('honours the server nextCheckin instead of period and jitter', () => {
    expect(nextAfterCheckin(NOW, DAY, () => 0.9, 120)).toBe(NOW + 120_000);
    expect(nextAfterCheckin(NOW, DAY, () => 0, 0)).toBe(NOW + 86_400_000);
  });

  it('clamps the server nextCheckin to [60 s, 7 days]', () => {
    expect(MIN_SERVER_NEXT_CHECKIN).toBe(60);
    expect(MAX_SERVER_NEXT_CHECKIN).toBe(7 * 86_400);
    // `{"nextCheckin":0.05}` once made a device check in 83 times in 5 s.
    expect(nextAfterCheckin(NOW, DAY, () => 0, 0.05)).toBe(NOW + 60_000);
    expect(nextAfterCheckin(NOW, DAY, () => 0, 59)).toBe(NOW + 60_000);
    expect(nextAfterCheckin(NOW, DAY, () => 0, 61)).toBe(NOW + 61_000);
    expect(nextAfterCheckin(NOW, DAY, () => 0, 365 * 86_400)).toBe(NOW + 7 * 86_400_000);
  });
});

describe('nextAfterFailure: capped exponential backoff', () => {
  it('doubles from the base per failure, between half and all of the step', () => {
    const low = [1, 2, 3, 4].map((n) => nextAfterFailure(NOW, n, DAY, () => 0) - NOW);
    const high = [1, 2, 3, 4].map((n) => nextAfterFailure(NOW, n, DAY, () => 1) - NOW);
    expect(low).toEqual([1, 2, 4, 8].map((k) => (k * CHECKIN_BACKOFF_BASE_MS) / 2));
    expect(high).toEqual([1, 2, 4, 8].map((k) => k * CHECKIN_BACKOFF_BASE_MS));
  });

  it('stops growing at the cap, and at one period when the period is shorter', () => {
    expect(nextAfterFailure(NOW, 30, DAY, () => 1) - NOW).toBe(CHECKIN_BACKOFF_CAP_MS);
    expect(nextAfterFailure(NOW, 1000, DAY, () => 1) - NOW).toBe(CHECKIN_BACKOFF_CAP_MS);
    expect(nextAfterFailure(NOW, 30, { period: 60, jitter: 0 }, () => 1) - NOW).toBe(60_000);
  });

  it('caps Retry-After at 7 days', () => {
    expect(nextAfterFailure(NOW, 1, DAY, () => 0, 10 * 365 * 86_400) - NOW).toBe(7 * 86_400_000);
  });

  it('never retries before Retry-After', () => {
    expect(nextAfterFailure(NOW, 1, DAY, () => 0, 900) - NOW).toBe(900_000);
    // A shorter Retry-After does not cut the backoff.
    expect(nextAfterFailure(NOW, 2, DAY, () => 1, 5) - NOW).toBe(2 * CHECKIN_BACKOFF_BASE_MS);
  });
});

describe('dueAt: the persisted schedule across restarts', () => {
  it.each([
    ['never checked in: now', {}, NOW],
    ['scheduled later: then', { lastCheckin: NOW - HOUR_MS, nextCheckin: NOW + HOUR_MS }, NOW + HOUR_MS],
    [
      'overdue (device was off): now or earlier',
      { lastCheckin: NOW - 3 * 86_400_000, nextCheckin: NOW - 2 * 86_400_000 },
      NOW - 2 * 86_400_000,
    ],
    ['clock went back: now', { lastCheckin: NOW + 86_400_000, nextCheckin: NOW + 2 * 86_400_000 }, NOW],
  ])('%s', (_name, state, expected) => {
    expect(dueAt(state, NOW)).toBe(expected);
  });
});

describe('update id backoff', () => {
  const backoff = { retryDelays: [3600, 6 * 3600], maxFailures: 3 };

  it('holds a failed id back for an increasing time, then for good after the last failure', () => {
    const first = recordUpdateFailure(undefined, NOW, backoff);
    expect(first).toEqual({ failures: 1, retryAt: NOW + HOUR_MS });
    expect(updateHeldBack(first, NOW + HOUR_MS - 1, backoff)).toEqual({ held: true, until: NOW + HOUR_MS });
    expect(updateHeldBack(first, NOW + HOUR_MS, backoff)).toEqual({ held: false });

    const second = recordUpdateFailure(first, NOW + HOUR_MS, backoff);
    expect(second).toEqual({ failures: 2, retryAt: NOW + 7 * HOUR_MS });
    expect(updateHeldBack(second, NOW + 7 * HOUR_MS - 1, backoff).held).toBe(true);

    const third = recordUpdateFailure(second, NOW + 7 * HOUR_MS, backoff);
    expect(third.failures).toBe(3);
    expect(updateHeldBack(third, NOW + 10_000 * HOUR_MS, backoff)).toEqual({ held: true });
  });

  it('does not hold back an id without failures', () => {
    expect(updateHeldBack(undefined, NOW, backoff)).toEqual({ held: false });
  });
});
