/**
 * Pure rollout-limit math (DESIGN §4.4). The stateful parts (granted sets, counters) live in functions/.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from './errors.ts';

const BUCKETS = 10_000;

/**
 * The device's bucket for an update, 0–9999: first 4 bytes (big-endian) of sha256(updateId ":" deviceId)
 * mod 10000. Deterministic per (update, device), independent across updates, so a percentage rollout
 * picks the same devices on every checkin and different devices for different updates.
 */
export function rolloutBucket(updateId: string, deviceId: string): number {
  return createHash('sha256').update(`${updateId}:${deviceId}`).digest().readUInt32BE(0) % BUCKETS;
}

/**
 * Whether the device is inside a `percentage` rollout. Undefined means no percentage limit (always in);
 * 0 or less means nobody; 100 or more everybody. Raising the percentage only adds devices (monotonic).
 * The threshold is rounded to whole buckets (0.01 %) so that float error in `percentage * 100`
 * (0.29 * 100 = 28.999…) cannot move a device across it.
 */
export function inPercentage(updateId: string, deviceId: string, percentage: number | undefined): boolean {
  if (percentage === undefined || percentage >= 100) return true;
  if (!(percentage > 0)) return false;
  return rolloutBucket(updateId, deviceId) < Math.round(percentage * 100);
}

/**
 * Checks a rollout percentage as a builder gives it: devices fall into 10,000 buckets, so a percentage
 * is a whole number of 0.01 % steps from 0.01 to 100. Anything finer reaches nobody or is silently
 * rounded (`--percentage 1e-9` was accepted and reached no device). `flag` names the setting in the error.
 */
export function checkPercentage(percentage: number, flag = '--percentage'): void {
  const steps = percentage * (BUCKETS / 100);
  // Compare the decimal spelling rounded to two places: 0.29 * 100 is 28.999… in binary.
  const twoDecimals = Number(percentage.toFixed(2)) === percentage;
  if (!Number.isFinite(percentage) || !twoDecimals || steps < 1 || percentage > 100) {
    throw new ValidationError(
      `Invalid ${flag} ${percentage}: use 0.01 to 100 with at most two decimals (devices are split in 0.01 % steps)`,
    );
  }
}

/** Index of the `rate` window holding `nowMs` (epoch milliseconds) for windows of `periodSeconds`. */
export function rateWindow(nowMs: number, periodSeconds: number): number {
  if (!(periodSeconds > 0) || !Number.isFinite(periodSeconds)) {
    throw new ValidationError(`Invalid period ${periodSeconds}: use a positive number of seconds`);
  }
  return Math.floor(nowMs / (periodSeconds * 1000));
}

const RETRY_SUFFIX = /:r(\d+)$/;

/**
 * The update id a checkin answer names: after `rollout retry-failed` it carries the retry count,
 * so an agent that backed off the id after failures sees a new offer; reports echo it back.
 */
export function offeredUpdateId(updateId: string, retry: number | undefined): string {
  return retry ? `${updateId}:r${retry}` : updateId;
}

/** The update id of an offered id (a report's `update`): the retry suffix removed. */
export function baseUpdateId(offered: string): string {
  return offered.replace(RETRY_SUFFIX, '');
}
