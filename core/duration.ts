/**
 * Ioto-style durations (DESIGN §7): "24 hrs", "30 secs", "15 min", "1 day", "500 msecs", "1 week",
 * shorthands "30s", "15m", "1h", "1d", "1w", and plain numbers, which mean seconds.
 * Units are case-insensitive and the space before them optional; fractions are allowed ("1.5 hrs").
 * "m" is minutes (as in Ioto); months are spelled out ("1 month" = 30 days, "1 year" = 365 days).
 * Ioto's "unlimited"/"forever" are refused: no caller here has a meaning for an endless period.
 */
import { ValidationError } from './errors.ts';
import { quoteInput } from './version.ts';

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Unit → seconds. */
const UNITS: ReadonlyMap<string, number> = new Map(
  (
    [
      [['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'], 0.001],
      [['', 's', 'sec', 'secs', 'second', 'seconds'], 1],
      [['m', 'min', 'mins', 'minute', 'minutes'], MINUTE],
      [['h', 'hr', 'hrs', 'hour', 'hours'], HOUR],
      [['d', 'day', 'days'], DAY],
      [['w', 'wk', 'wks', 'week', 'weeks'], 7 * DAY],
      [['month', 'months'], 30 * DAY],
      [['y', 'yr', 'yrs', 'year', 'years'], 365 * DAY],
    ] as const
  ).flatMap(([names, seconds]) => names.map((name) => [name, seconds] as const)),
);

const DURATION = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$/;

/** Duration text or a number of seconds → seconds (fractional for msecs). `what` names the setting in the error. */
export function parseDuration(text: string | number, what: string): number {
  if (typeof text === 'number') {
    if (Number.isFinite(text) && text >= 0) return text;
  } else if (typeof text === 'string') {
    const m = DURATION.exec(text);
    const unit = m ? UNITS.get(m[2]!.toLowerCase()) : undefined;
    if (m && unit !== undefined) {
      const seconds = Number(m[1]) * unit;
      if (Number.isFinite(seconds)) return seconds;
    }
  }
  throw new ValidationError(
    `Invalid duration for ${what}: ${quoteInput(text)} (use e.g. "24 hrs", "30 secs")`,
  );
}
