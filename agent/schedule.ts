/**
 * Schedule math of the agent, pure: every function takes the time (epoch ms) and a random number
 * source, so tests run on a fake clock. Settings are in seconds as in the config, results in epoch ms.
 */
import type { FailureRecord } from './state.ts';

export interface ScheduleSettings {
  /** Seconds between checkins. */
  readonly period: number;
  /** Up to this many seconds added at random to each period, so a fleet does not check in at once. */
  readonly jitter: number;
}

/** First retry after a failed checkin; doubles per consecutive failure. */
export const CHECKIN_BACKOFF_BASE_MS = 30_000;
/** Longest wait after failed checkins (never longer than one period either). */
export const CHECKIN_BACKOFF_CAP_MS = 3_600_000;

/**
 * Bounds of a server's `nextCheckin`, in seconds. A faulty or hostile cloud must neither make a fleet
 * hammer it (`0.05` would mean 20 checkins a second) nor silence devices for months.
 */
export const MIN_SERVER_NEXT_CHECKIN = 60;
export const MAX_SERVER_NEXT_CHECKIN = 7 * 86_400;

/**
 * When to check in next after a checkin that got an answer. A server `nextCheckin` (seconds, > 0)
 * wins over period and jitter, clamped to [MIN_SERVER_NEXT_CHECKIN, MAX_SERVER_NEXT_CHECKIN].
 */
export function nextAfterCheckin(
  now: number,
  settings: ScheduleSettings,
  random: () => number,
  serverNextCheckin?: number,
): number {
  if (serverNextCheckin !== undefined && serverNextCheckin > 0) {
    return now + clamp(serverNextCheckin, MIN_SERVER_NEXT_CHECKIN, MAX_SERVER_NEXT_CHECKIN) * 1000;
  }
  return now + settings.period * 1000 + Math.floor(random() * settings.jitter * 1000);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/**
 * When to retry after `failures` consecutive failed checkins: capped exponential backoff with "equal
 * jitter" (half fixed, half random) so devices that failed together spread out, and never sooner than
 * the server's Retry-After (seconds).
 */
export function nextAfterFailure(
  now: number,
  failures: number,
  settings: ScheduleSettings,
  random: () => number,
  retryAfter?: number,
): number {
  const cap = Math.min(CHECKIN_BACKOFF_CAP_MS, settings.period * 1000);
  const exponential = Math.min(cap, CHECKIN_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  let delay = exponential / 2 + random() * (exponential / 2);
  // A Retry-After of years would silence the device as surely as a bad nextCheckin.
  if (retryAfter !== undefined && retryAfter > 0)
    delay = Math.max(delay, Math.min(retryAfter, MAX_SERVER_NEXT_CHECKIN) * 1000);
  return now + Math.floor(delay);
}

/**
 * When the next checkin is due, given the persisted schedule. A device that never checked in goes now;
 * a last checkin in the future means the clock went back, so the stored time cannot be trusted either.
 */
export function dueAt(state: { lastCheckin?: number; nextCheckin?: number }, now: number): number {
  if (state.nextCheckin === undefined) return now;
  if (state.lastCheckin !== undefined && state.lastCheckin > now + 60_000) return now;
  return state.nextCheckin;
}

/**
 * Download cycles (a checkin, then the download with its own bounded retries) that may fail in a row
 * without adding a byte before the update is failed and reported. Each failed cycle is retried on the
 * checkin backoff, counted per update: a checkin that gets an answer does not reset it.
 */
export const MAX_DOWNLOAD_CYCLES = 5;

/** Seconds an update id is skipped after its 1st, 2nd, … failure; after the last it is skipped for good. */
export const UPDATE_RETRY_DELAYS: readonly number[] = [3600, 6 * 3600];
/** Failures after which an update id is not tried again until the cloud offers a different update. */
export const MAX_UPDATE_FAILURES = 3;

export interface UpdateBackoff {
  readonly retryDelays: readonly number[];
  readonly maxFailures: number;
}

export const DEFAULT_UPDATE_BACKOFF: UpdateBackoff = {
  retryDelays: UPDATE_RETRY_DELAYS,
  maxFailures: MAX_UPDATE_FAILURES,
};

export function recordUpdateFailure(
  previous: FailureRecord | undefined,
  now: number,
  backoff: UpdateBackoff = DEFAULT_UPDATE_BACKOFF,
): FailureRecord {
  const failures = (previous?.failures ?? 0) + 1;
  const delays = backoff.retryDelays;
  const delay = delays[Math.min(failures, delays.length) - 1] ?? 0;
  return { failures, retryAt: now + delay * 1000 };
}

/** Whether an offered update id is held back by its failures; `until` is undefined when for good. */
export function updateHeldBack(
  record: FailureRecord | undefined,
  now: number,
  backoff: UpdateBackoff = DEFAULT_UPDATE_BACKOFF,
): { held: boolean; until?: number } {
  if (!record) return { held: false };
  if (record.failures >= backoff.maxFailures) return { held: true };
  return now < record.retryAt ? { held: true, until: record.retryAt } : { held: false };
}
