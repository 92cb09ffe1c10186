/**
 * The phase ledger (DESIGN §12): which phase of a phased update checkins are in. The phase is
 * evaluated at checkin (no scheduler) and recorded on the update item with a conditional write
 * that only moves it forward, so every container agrees and a phase, once begun, never ends early.
 */
import { evaluatePhase, type PhaseStatus, phasePlanOf } from '#core/phases.ts';
import type { UpdateRecord } from '#core/types.ts';
import { BoundedMap } from './bounded-map.ts';
import type { Table } from './dynamo.ts';
import { keys } from './keys.ts';
import { readUpdate } from './update-counters.ts';

export class PhaseLedger {
  /** The highest phase this container saw recorded per update: the catalog's copy may be older. */
  private readonly recorded = new BoundedMap<string, number>(10_000);

  constructor(private readonly table: Table) {}

  /**
   * The update as a checkin at `now` admits devices: a phased update's `percentage` becomes the
   * current phase's share (the same buckets, so devices admitted earlier stay admitted). A stored
   * plan that no longer parses admits nobody new rather than everybody.
   */
  async admitting(update: UpdateRecord, now: number): Promise<UpdateRecord> {
    let plan: ReturnType<typeof phasePlanOf>;
    try {
      plan = phasePlanOf(update);
    } catch {
      return { ...update, percentage: 0 };
    }
    if (!plan) return update;
    const status = await this.phaseOf(update, plan, now);
    return { ...update, percentage: status.percentage };
  }

  private async phaseOf(
    update: UpdateRecord,
    plan: NonNullable<ReturnType<typeof phasePlanOf>>,
    now: number,
  ): Promise<PhaseStatus> {
    let recorded = Math.max(update.phase ?? -1, this.recorded.get(update.id) ?? -1);
    let status = evaluatePhase({ ...plan, now, recorded, counters: update.counters });
    if (status.index > recorded || status.waitingOnGate) {
      // At a boundary: decide on the stored phase and counters, not on this container's copy,
      // so that two containers never answer from different phases for long.
      const stored = await readUpdate(this.table, update.product, update.id);
      if (!stored) return status; // deleted: the rollout ledger's grant finds no update
      recorded = Math.max(recorded, stored.phase ?? -1);
      status = evaluatePhase({ ...plan, now, recorded, counters: stored.counters });
      if (status.index > recorded) {
        const won = await this.record(update, status.index);
        if (won > status.index)
          status = evaluatePhase({ ...plan, now, recorded: won, counters: stored.counters });
      }
    }
    if (status.index >= 0) this.recorded.set(update.id, status.index);
    return status;
  }

  /** Records phase `index` unless a later one is; returns the phase stored now. */
  private async record(update: UpdateRecord, index: number): Promise<number> {
    const key = keys.update(update.product, update.id);
    const out = await this.table.update(key, {
      set: { phase: index },
      condition: 'attribute_exists(pk) AND (attribute_not_exists(#phase) OR #phase < :index)',
      names: { '#phase': 'phase' },
      values: { ':index': index },
    });
    if (out) return index;
    // Another checkin recorded this phase or a later one first (or the update was deleted).
    const item = await this.table.get(key, true);
    const stored = typeof item?.phase === 'number' ? item.phase : index;
    return Math.max(stored, index);
  }
}
