/**
 * The phase ledger (DESIGN §12): which phase of a phased update checkins are in. The phase is
 * evaluated at checkin (no scheduler) and recorded on the update item with a conditional write
 * that only moves it forward, so every container agrees and a phase, once begun, never ends early.
 */
import { evaluatePhase, type PhaseStatus, phasePlanOf } from '#core/phases.ts';
import type { UpdateRecord } from '#core/types.ts';
import { BoundedMap } from './bounded-map.ts';
import type { Item, Table } from './dynamo.ts';
import { keys } from './keys.ts';
import { updateFromItem } from './records.ts';
import { withShardCounts } from './update-counters.ts';

/**
 * How long a container reuses an update's counter shards at a phase boundary. While a phase waits
 * on its gate every eligible checkin asks; the update item (its phase) is still read each time,
 * so containers agree on the phase, while the gate sees reports at most this much later.
 */
const SHARDS_REREAD_MS = 1000;

export class PhaseLedger {
  /** The highest phase this container saw recorded per update: the catalog's copy may be older. */
  private readonly recorded = new BoundedMap<string, number>(10_000);
  /** Counter shards read at a boundary, per update, and when (see SHARDS_REREAD_MS). */
  private readonly shards = new BoundedMap<string, { at: number; items: Item[] }>(10_000);

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
      const stored = await this.stored(update, now);
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

  /** The update as stored: its item read now, its counter shards at most SHARDS_REREAD_MS old. */
  private async stored(update: UpdateRecord, now: number): Promise<UpdateRecord | undefined> {
    const { pk, skPrefix } = keys.updateCountersOf(update.product, update.id);
    const cached = this.shards.get(update.id);
    const fresh = cached && now >= cached.at && now - cached.at < SHARDS_REREAD_MS;
    const [item, shards] = await Promise.all([
      this.table.get(keys.update(update.product, update.id), true),
      fresh ? cached.items : this.table.query(pk, skPrefix, true),
    ]);
    if (!fresh) this.shards.set(update.id, { at: now, items: shards });
    return item ? withShardCounts([updateFromItem(item)], shards)[0] : undefined;
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
