/**
 * Rollout control (DESIGN §12): pause, resume, advance a phase, offer an update again to the
 * devices whose last report failed. The CLI's `updraft rollout` and the console's buttons call these.
 */
import { formatGate, gateHolds, type PhaseStatus, phasePlanOf, phaseStatusOf } from '#core/phases.ts';
import type { UpdateRecord } from '#core/types.ts';
import type { Item } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { updateFromItem } from '#functions/records.ts';
import { withStoredCounts } from '#functions/update-counters.ts';
import { announceChange, type CloudRecords } from './cloud.ts';
import { adminOperation, ConflictError, InvalidInputError, NotFoundError } from './errors.ts';
import { findUpdate, type UpdateSelector } from './updates.ts';

export { phaseStatusOf };

export interface RolloutOptions {
  readonly now?: () => number;
}

export interface AdvanceOptions extends RolloutOptions {
  /** Advance even when the gate does not hold. */
  readonly force?: boolean;
}

/** The update after a rollout operation, and its phase (undefined without phases). */
export interface RolloutResult {
  readonly update: UpdateRecord;
  readonly phase: PhaseStatus | undefined;
}

/** `retry-failed`: how many devices' last report had failed when the update was offered again. */
export interface RetryResult extends RolloutResult {
  readonly failedDevices: number;
}

const DEFAULT_PAUSE_REASON = 'paused by the builder';

async function write(
  cloud: CloudRecords,
  update: UpdateRecord,
  spec: Parameters<CloudRecords['table']['update']>[1],
): Promise<UpdateRecord | undefined> {
  const out = await cloud.table.update(keys.update(update.product, update.id), spec);
  if (!out) return undefined;
  await announceChange(cloud, update.product);
  return withStoredCounts(cloud.table, updateFromItem(out as Item));
}

function result(update: UpdateRecord, now: () => number): RolloutResult {
  return { update, phase: phaseStatusOf(update, now()) };
}

/** Pauses an update: checkins stop getting it until `resumeRollout` (or `enable`). */
export function pauseRollout(
  cloud: CloudRecords,
  selector: UpdateSelector,
  reason = DEFAULT_PAUSE_REASON,
  options: RolloutOptions = {},
): Promise<RolloutResult> {
  return adminOperation(cloud.store, async () => {
    if (reason.trim() === '' || reason.length > 200) {
      throw new InvalidInputError('Invalid --reason: give 1–200 characters saying why the rollout is paused');
    }
    const update = await findUpdate(cloud.table, selector);
    const paused = await write(cloud, update, {
      set: { paused: true, pauseReason: reason },
      condition: 'attribute_exists(pk) AND (attribute_not_exists(#paused) OR #paused = :no)',
      names: { '#paused': 'paused' },
      values: { ':no': false },
    });
    if (!paused)
      throw new ConflictError(
        `${update.product} ${update.version} is already paused (${update.pauseReason ?? 'no reason given'})`,
      );
    return result(paused, options.now ?? Date.now);
  });
}

/** Resumes a paused update (by the builder or by auto-abort); a disabled update stays disabled. */
export function resumeRollout(
  cloud: CloudRecords,
  selector: UpdateSelector,
  options: RolloutOptions = {},
): Promise<RolloutResult> {
  return adminOperation(cloud.store, async () => {
    const update = await findUpdate(cloud.table, selector);
    const resumed = await write(cloud, update, {
      set: { paused: false },
      remove: ['pauseReason'],
      condition: 'attribute_exists(pk) AND #paused = :yes',
      names: { '#paused': 'paused' },
      values: { ':yes': true },
    });
    if (!resumed) throw new ConflictError(`${update.product} ${update.version} is not paused`);
    return result(resumed, options.now ?? Date.now);
  });
}

function gateRefusal(update: UpdateRecord, next: number): ConflictError {
  const { success, failure } = update.counters;
  const gate = phasePlanOf(update)?.gate;
  return new ConflictError(
    `Phase ${next + 1} waits on its gate (${gate ? formatGate(gate) : ''}): ${success} of ${success + failure} reports succeeded; pass --force to advance anyway`,
  );
}

/** Begins the next phase now: skips its wait, not its gate unless `force`. */
export function advanceRollout(
  cloud: CloudRecords,
  selector: UpdateSelector,
  options: AdvanceOptions = {},
): Promise<RolloutResult> {
  const now = options.now ?? Date.now;
  return adminOperation(cloud.store, async () => {
    const update = await findUpdate(cloud.table, selector);
    const plan = phasePlanOf(update);
    const status = phaseStatusOf(update, now());
    if (!plan || !status) {
      throw new InvalidInputError(
        `${update.product} ${update.version} has no phases: add them with updraft edit --phases`,
      );
    }
    const next = status.index + 1;
    if (next >= plan.phases.length) {
      throw new ConflictError(
        `${update.product} ${update.version} is in its last phase (${status.percentage}%)`,
      );
    }
    if (next > 0 && !options.force && !gateHolds(plan.gate, update.counters)) throw gateRefusal(update, next);
    const advanced = await write(cloud, update, {
      set: { phase: next },
      condition: 'attribute_exists(pk) AND (attribute_not_exists(#phase) OR #phase < :next)',
      names: { '#phase': 'phase' },
      values: { ':next': next },
    });
    // Lost to a checkin (or another builder) that recorded this phase or a later one first.
    return result(advanced ?? (await findUpdate(cloud.table, selector)), now);
  });
}

/**
 * Offers the update again to the devices whose last report failed: the checkin answer names it
 * with a new retry suffix, which clears the agent's per-update backoff; granted devices get it
 * again without counting a new start. Their next report moves their outcome as usual.
 */
export function retryFailed(
  cloud: CloudRecords,
  selector: UpdateSelector,
  options: RolloutOptions = {},
): Promise<RetryResult> {
  return adminOperation(cloud.store, async () => {
    const update = await findUpdate(cloud.table, selector);
    if (update.counters.failure === 0) {
      throw new ConflictError(
        `No device's last report of ${update.product} ${update.version} failed: nothing to retry`,
      );
    }
    const retried = await write(cloud, update, { add: { retry: 1 }, condition: 'attribute_exists(pk)' });
    if (!retried)
      throw new NotFoundError(`Update ${update.version} of ${update.product} was deleted meanwhile`);
    return { ...result(retried, options.now ?? Date.now), failedDevices: retried.counters.failure };
  });
}
