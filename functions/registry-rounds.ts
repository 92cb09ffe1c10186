/**
 * The local cloud's counted registry changes (a new device, version or day), written in rounds: the
 * changes queued while one round is written make the next, which reads their entries in one request
 * and writes them with their counts as one batch (functions/embedded-batch.ts). A checkin waits for
 * its round, as it would for its own transaction, so it is answered with its entry and counts
 * stored, or with the store's error. On dynalite a transaction per device cost about five requests
 * on the one thread that serves the checkins too; a round costs one per device and four more.
 */
import { countedChange, type DeviceEntry, dayOf, REGISTRY_TOKEN_PREFIX } from './aggregates.ts';
import { type Key, type Table, transactionToken } from './dynamo.ts';
import { BATCH_INTENT_BYTES, type BatchedEntry, commitRegistryBatch, isSettling } from './embedded-batch.ts';
import type { UpdateWrite } from './embedded-marks.ts';
import { StoreUnavailableError } from './errors.ts';

/** A BatchGetItem request reads at most 100 items. */
const ROUND_DEVICES = 100;

/** A device's change as queued: a later checkin of the device replaces its entry. */
interface QueuedChange {
  readonly product: string;
  entry: DeviceEntry;
  fingerprint: string;
  /** Rounds it lost to other writers of its entry (see `attempts`). */
  lost: number;
  readonly waiters: { resolve(): void; reject(err: unknown): void }[];
}

export interface RoundsOptions {
  /** Where entries are read. */
  readonly table: Table;
  /** Where entries and counts are written. */
  readonly countingTable: Table;
  /** Each change loses at most this many rounds to other writers of its entry, then gives up. */
  readonly attempts: number;
  /** Settles when the plain entry writes in flight have landed (they must not land after a change). */
  readonly plainWrites: () => Promise<void>;
  /** Told of each entry written (and counted). */
  readonly onWritten: (cacheKey: string, entry: DeviceEntry, fingerprint: string) => void;
}

export class RegistryRounds {
  private readonly queue = new Map<string, QueuedChange>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Each device's latest change not settled yet, and its day. */
  private readonly latestDay = new Map<string, { readonly day: string; readonly done: Promise<void> }>();
  private running = false;

  constructor(private readonly options: RoundsOptions) {}

  /** Queues a change; settles once it is written with its counts (or lost every race, see above). */
  change(cacheKey: string, product: string, entry: DeviceEntry, fingerprint: string): Promise<void> {
    if (isSettling(this.options.countingTable, entry)) return Promise.reject(settlingError());
    const day = dayOf(entry.lastSeen);
    const earlier = this.latestDay.get(cacheKey);
    // A change of the day before, still queued or being written: this one taking its place would
    // leave the device unseen that day, so it follows in a later round.
    if (earlier && earlier.day < day) {
      const next = earlier.done
        .catch(() => {})
        .then(() => this.change(cacheKey, product, entry, fingerprint));
      this.inFlight.add(next);
      const forget = () => this.inFlight.delete(next);
      next.then(forget, forget);
      return next;
    }
    const done = new Promise<void>((resolve, reject) => {
      const queued = this.queue.get(cacheKey);
      if (queued) {
        queued.entry = entry;
        queued.fingerprint = fingerprint;
        queued.waiters.push({ resolve, reject });
      } else
        this.queue.set(cacheKey, { product, entry, fingerprint, lost: 0, waiters: [{ resolve, reject }] });
    });
    this.inFlight.add(done);
    this.latestDay.set(cacheKey, { day, done });
    const forget = () => {
      this.inFlight.delete(done);
      if (this.latestDay.get(cacheKey)?.done === done) this.latestDay.delete(cacheKey);
    };
    done.then(forget, forget);
    this.pump();
    return done;
  }

  /** Settles when every change queued so far is written or has failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * One round at a time, on purpose: a round cut off by an error marks its devices unsettled
   * before the next round takes any of them, so no later write overwrites the batchTx its replay
   * reads (embedded-batch.ts).
   */
  private pump(): void {
    if (this.running || this.queue.size === 0) return;
    this.running = true;
    // After the I/O of this turn: the checkins arriving together make one round.
    setImmediate(() => {
      void this.round().finally(() => {
        this.running = false;
        this.pump();
      });
    });
  }

  /** The changes of one round: up to ROUND_DEVICES, and what one intent holds. */
  private take(): [string, QueuedChange][] {
    const round: [string, QueuedChange][] = [];
    let bytes = 0;
    for (const [cacheKey, queued] of this.queue) {
      bytes += Buffer.byteLength(JSON.stringify(queued.entry)) + 1000;
      if (round.length > 0 && (round.length === ROUND_DEVICES || bytes > BATCH_INTENT_BYTES)) break;
      this.queue.delete(cacheKey);
      if (isSettling(this.options.countingTable, queued.entry)) {
        for (const waiter of queued.waiters) waiter.reject(settlingError());
        continue;
      }
      round.push([cacheKey, queued]);
    }
    return round;
  }

  private async round(): Promise<void> {
    await this.options.plainWrites().catch(() => {});
    const round = this.take();
    if (round.length === 0) return;
    try {
      const keyOf = ({ entry }: QueuedChange): Key => ({ pk: entry.pk, sk: entry.sk });
      const stored = await this.options.table.getMany(
        round.map(([, queued]) => keyOf(queued)),
        true,
      );
      const batch: BatchedEntry[] = [];
      const batched: [string, QueuedChange][] = [];
      for (const [i, [cacheKey, queued]] of round.entries()) {
        const change = countedChange(queued.product, queued.entry, stored[i]);
        // Stored is of a later day: that checkin counted the device already.
        if (!change) this.written(cacheKey, queued);
        else {
          const counts = change.counts.filter((write): write is UpdateWrite => 'key' in write);
          batch.push({ key: keyOf(queued), update: change.registry, counts });
          batched.push([cacheKey, queued]);
        }
      }
      if (batch.length === 0) return;
      const token = REGISTRY_TOKEN_PREFIX + transactionToken();
      const written = await commitRegistryBatch(this.options.countingTable, batch, token);
      for (const [i, [cacheKey, queued]] of batched.entries()) {
        if (written[i]) this.written(cacheKey, queued);
        else this.lost(cacheKey, queued);
      }
    } catch (err) {
      for (const [, queued] of round) for (const waiter of queued.waiters) waiter.reject(err);
    }
  }

  private written(cacheKey: string, queued: QueuedChange): void {
    this.options.onWritten(cacheKey, queued.entry, queued.fingerprint);
    for (const waiter of queued.waiters) waiter.resolve();
  }

  /**
   * Another writer moved the entry since it was read: tried again in the next round, against the
   * entry as stored then. A newer change of the device queued meanwhile takes its place.
   */
  private lost(cacheKey: string, queued: QueuedChange): void {
    const newer = this.queue.get(cacheKey);
    if (newer) newer.waiters.push(...queued.waiters);
    else if (++queued.lost < this.options.attempts) this.queue.set(cacheKey, queued);
    // Lost every race to checkins of the same device: one of those wrote its entry and counted it,
    // and this checkin is as recent. Not an error to answer the device with (DESIGN §2).
    else for (const waiter of queued.waiters) waiter.resolve();
  }
}

/** A device of a batch cut off by an error, until the batch is settled: the device retries later. */
const settlingError = () => new StoreUnavailableError('dynamodb');
