/**
 * The checkin algorithm of DESIGN §4: find the candidate update (pure), then apply its rollout
 * limits against the store (grant idempotency, percentage, limit, rate), in that order.
 */
import { type CompiledPolicy, compilePolicy } from '#core/policy.ts';
import { inPercentage, rateWindow } from '#core/rollout.ts';
import type { DeviceCheckin, UpdateRecord } from '#core/types.ts';
import { compareVersions } from '#core/version.ts';
import type { DeviceStore } from './device-store.ts';

const compiled = new WeakMap<UpdateRecord, CompiledPolicy | null>();

/** The update's policy, compiled once per record; null when the stored text no longer compiles. */
function policyOf(update: UpdateRecord): CompiledPolicy | null {
  let policy = compiled.get(update);
  if (policy === undefined) {
    try {
      policy = compilePolicy(update.policy);
    } catch {
      policy = null;
    }
    compiled.set(update, policy);
  }
  return policy;
}

/**
 * Walks `updates` (descending precedence) and returns the first whose policy matches the device.
 * `context` is the device's policy context; `newVersion` is set on it per update.
 */
export function findCandidate(
  updates: readonly UpdateRecord[],
  device: DeviceCheckin,
  context: Record<string, unknown>,
  onPolicyError: (update: UpdateRecord) => void,
): UpdateRecord | undefined {
  for (const update of updates) {
    if (!update.enabled || update.paused) continue;
    const order = compareVersions(update.version, device.version);
    if (order === 0) continue;
    if (order < 0 && !(update.allowDowngrade && update.policy.trim() !== '')) continue;
    const policy = policyOf(update);
    context.newVersion = update.version;
    const match = policy ? policy.evaluate(context) : null;
    if (match === null) onPolicyError(update);
    else if (match) return update;
  }
  return undefined;
}

export type Grant =
  | { readonly granted: true; readonly again: boolean }
  | { readonly granted: false; readonly reason: 'percentage' | 'limit' | 'rate' };

/**
 * Decides whether the device may have the candidate now. The grant and the counters it takes are
 * written together (DeviceStore.grant), so concurrent checkins never grant past a limit, and a
 * device's duplicate checkins take no second start or window slot.
 */
export async function grantUpdate(
  store: DeviceStore,
  update: UpdateRecord,
  deviceId: string,
  now: number,
): Promise<Grant> {
  if (await store.hasGrant(update.id, deviceId)) return { granted: true, again: true };
  if (update.percentage !== undefined && !inPercentage(update.id, deviceId, update.percentage)) {
    return { granted: false, reason: 'percentage' };
  }
  const window =
    update.rate !== undefined && update.period !== undefined ? rateWindow(now, update.period) : undefined;
  // Limits known to be reached in this container defer without a write, in the design's order.
  if (store.limitKnownReached(update)) return { granted: false, reason: 'limit' };
  if (window !== undefined && store.rateWindowKnownFull(update, window))
    return { granted: false, reason: 'rate' };
  const expiresAt = window !== undefined ? (window + 2) * (update.period ?? 0) * 1000 : 0;
  const outcome = await store.grant(
    update,
    deviceId,
    window === undefined ? undefined : { index: window, expiresAt },
  );
  if (outcome === 'granted' || outcome === 'again') return { granted: true, again: outcome === 'again' };
  return { granted: false, reason: outcome };
}
