/**
 * The checkin algorithm of DESIGN §4, steps 1–4: find the candidate update (pure). Its rollout
 * limits are the rollout ledger's (functions/rollout-ledger.ts).
 */
import { type CompiledPolicy, compilePolicy } from '#core/policy.ts';
import type { DeviceCheckin, UpdateRecord } from '#core/types.ts';
import { compareVersions } from '#core/version.ts';

/**
 * The update's policy (compilePolicy caches it by source: the one policy cache); null when the
 * stored text no longer compiles (a record written by hand or by another version).
 */
function policyOf(update: UpdateRecord): CompiledPolicy | null {
  try {
    return compilePolicy(update.policy);
  } catch {
    return null;
  }
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
