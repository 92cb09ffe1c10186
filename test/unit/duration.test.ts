import { describe, expect, it } from 'vitest';
import { parseDuration } from '#core/duration.ts';
import { ValidationError } from '#core/errors.ts';

describe('parseDuration', () => {
  it.each([
    ['24 hrs', 86_400],
    ['30 secs', 30],
    ['15 min', 900],
    ['1 day', 86_400],
    ['2 days', 172_800],
    ['1 hour', 3_600],
    ['500 msecs', 0.5],
    ['1 week', 604_800],
    ['30s', 30],
    ['15m', 900],
    ['1h', 3_600],
    ['1d', 86_400],
    ['1w', 604_800],
    ['86400', 86_400],
    ['  2 Hours ', 7_200],
    ['1.5 hrs', 5_400],
    ['0', 0],
    ['1 month', 2_592_000],
    ['1 year', 31_536_000],
    ['250ms', 0.25],
  ] as const)('%j is %d seconds', (text, seconds) => {
    expect(parseDuration(text, 'update.period')).toBe(seconds);
  });

  it('takes numbers as seconds', () => {
    expect(parseDuration(3600, 'update.period')).toBe(3600);
    expect(parseDuration(0.25, 'update.period')).toBe(0.25);
  });

  it.each(['', 'soon', '24 hrz', '-1 hr', '1 2 hrs', 'hrs', '1e3', 'forever', '1 day ago', 'Infinity'])(
    'refuses %j',
    (text) => {
      expect(() => parseDuration(text, 'update.period')).toThrow(
        new ValidationError(
          `Invalid duration for update.period: ${JSON.stringify(text)} (use e.g. "24 hrs", "30 secs")`,
        ),
      );
    },
  );

  it('refuses negative and non-finite numbers and other types', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, null, true, {}] as unknown as number[]) {
      expect(() => parseDuration(bad, 'update.jitter')).toThrow(/^Invalid duration for update\.jitter: /);
    }
  });

  it('refuses a number too large to be finite in seconds', () => {
    expect(() => parseDuration(`${'9'.repeat(400)} years`, 'x')).toThrow(ValidationError);
  });
});
