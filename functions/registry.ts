/**
 * The device registry: each device's last checkin (last seen, version, properties), written
 * sparingly, and the device counts of functions/aggregates.ts, which change with it: a new device,
 * a new version or a device's first checkin of the day is written in one transaction with its
 * counter shards (in Lambda), or in a round with other devices' (the local cloud,
 * functions/registry-rounds.ts); anything else is a plain write conditional on the counted state it
 * keeps.
 */
import { createHash } from 'node:crypto';
import type { DeviceCheckin } from '#core/types.ts';
import { type DeviceEntry, dayOf, writeCounted } from './aggregates.ts';
import { BoundedMap } from './bounded-map.ts';
import type { ConflictReporter } from './conflicts.ts';
import type { Table } from './dynamo.ts';
import { keys } from './keys.ts';
import { RegistryRounds } from './registry-rounds.ts';

/** Checkins of one device racing to change its entry: each loses at most this many times. */
const CHANGE_ATTEMPTS = 4;
export interface RegistryOptions {
  /** Skip rewriting a device's entry when unchanged and younger than this. */
  readonly refreshMs: number;
  /**
   * When set, entries are buffered and written in batches this often instead of once per checkin,
   * and counted changes are written many devices at a time (functions/registry-rounds.ts): the
   * local cloud, where dynalite's write cost dominates a checkin. Unset in Lambda, whose container
   * may freeze before a timer fires, and whose store has transactions.
   */
  readonly batchMs?: number;
  /** Hears of entries left for the next checkin because their count shard stayed conflicted. */
  readonly conflicts?: ConflictReporter;
  readonly now: () => number;
}

/** What this container wrote last for a device: the counted version and day are the entry's. */
interface Written {
  readonly fingerprint: string;
  readonly at: number;
  readonly version: string;
  readonly day: string;
}

export class DeviceRegistry {
  private readonly written = new BoundedMap<string, Written>(100_000);
  private readonly pending = new Map<string, DeviceEntry>();
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Counted changes in rounds, when batching (see RegistryOptions.batchMs). */
  private readonly rounds: RegistryRounds | undefined;

  /**
   * `countingTable`: where entries are written with their counts. A Table of its own over the same
   * client, so that whether the store has transactions is probed for the registry apart from the
   * ledgers (whose writes then stay the same, write for write, as before aggregates).
   */
  constructor(
    private readonly table: Table,
    private readonly options: RegistryOptions,
    private readonly countingTable: Table = table,
  ) {
    if (options.batchMs === undefined) return;
    this.rounds = new RegistryRounds({
      table,
      countingTable,
      attempts: CHANGE_ATTEMPTS,
      plainWrites: () => this.flushing,
      onWritten: (cacheKey, entry, fingerprint) => {
        const day = dayOf(entry.lastSeen);
        this.written.set(cacheKey, { fingerprint, at: this.options.now(), version: entry.version, day });
      },
    });
  }

  /** Records a checkin. Unchanged devices are rewritten only every `refreshMs` (and once a day). */
  async record(device: DeviceCheckin): Promise<void> {
    const properties = JSON.stringify(device.body);
    // Typical bodies are kept as they are (cheaper than hashing on every checkin); large ones as a
    // digest, or up to 100,000 cached bodies of up to 16 KiB would be gigabytes.
    const fingerprint =
      properties.length <= 512 ? properties : createHash('sha256').update(properties).digest('base64');
    const cacheKey = `${device.product}\u0000${device.id}`;
    const now = this.options.now();
    const lastSeen = new Date(now).toISOString();
    const day = dayOf(now);
    const seen = this.written.get(cacheKey);
    const counted = seen !== undefined && seen.version === device.version && seen.day === day;
    if (counted && seen.fingerprint === fingerprint && now - seen.at < this.options.refreshMs) return;
    const entry: DeviceEntry = {
      ...keys.device(device.product, device.id),
      version: device.version,
      lastSeen,
      properties,
    };
    if (!counted) return this.change(device.product, entry, fingerprint);
    this.written.set(cacheKey, { fingerprint, at: now, version: device.version, day });
    if (this.options.batchMs !== undefined) {
      this.pending.set(cacheKey, { ...entry, counted: true });
      this.scheduleFlush();
      return;
    }
    try {
      // Counted already today on this version: a plain write, unless another container moved it.
      const unchanged = await this.table.update(keys.device(device.product, device.id), {
        set: { lastSeen, properties },
        condition: '#version = :v AND begins_with(#lastSeen, :day) AND attribute_exists(#counted)',
        names: { '#counted': 'counted', '#version': 'version' },
        values: { ':v': device.version, ':day': day },
      });
      if (!unchanged) await this.change(device.product, entry, fingerprint);
    } catch (err) {
      this.written.delete(cacheKey);
      throw err;
    }
  }

  /**
   * Writes an entry whose counts may change (new device, version or day), with them, against the
   * entry as stored now. Waits for a batch in flight first: it could otherwise land after it.
   * Gives up after CHANGE_ATTEMPTS lost races, leaving the winner's entry.
   */
  private async change(product: string, entry: DeviceEntry, fingerprint: string): Promise<void> {
    const cacheKey = `${product}\u0000${entry.sk}`;
    this.pending.delete(cacheKey);
    this.written.delete(cacheKey);
    if (this.rounds) return this.rounds.change(cacheKey, product, entry, fingerprint);
    await this.flushing.catch(() => {});
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      const stored = await this.table.get({ pk: entry.pk, sk: entry.sk }, true);
      const outcome = await writeCounted(this.countingTable, product, entry, stored, this.options.conflicts);
      if (outcome === 'left') return; // not written: the device's next checkin writes and counts it
      if (outcome === 'written') {
        const day = dayOf(entry.lastSeen);
        this.written.set(cacheKey, { fingerprint, at: this.options.now(), version: entry.version, day });
        return;
      }
    }
    // Lost every race to checkins of the same device: one of those wrote its entry and counted it,
    // and this checkin is as recent. Not an error to answer the device with (DESIGN §2).
  }

  /**
   * After an applied update the device runs the new version: record it now rather than at its
   * next checkin (possibly a day later), so `updraft stats` shows the rollout. A device without an
   * entry is left to its next checkin.
   */
  async recordAppliedVersion(product: string, deviceId: string, version: string): Promise<void> {
    const stored = await this.table.get(keys.device(product, deviceId), true);
    if (!stored) return;
    const entry: DeviceEntry = {
      ...keys.device(product, deviceId),
      version,
      lastSeen: new Date(this.options.now()).toISOString(),
      properties: typeof stored.properties === 'string' ? stored.properties : '{}',
    };
    await this.change(product, entry, '');
  }

  private scheduleFlush(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => void this.flush().catch(() => {}), this.options.batchMs);
    this.timer.unref();
  }

  /** Stops background flushing (the host flushes once more itself before closing). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Writes buffered entries (25 per request): only entries whose counts do not change are
   * buffered. A failed batch stays buffered for the next flush; only the local cloud buffers, and
   * it flushes on stop.
   */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.rounds?.settled();
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    const written = this.table.putMany(batch.map(([, entry]) => entry));
    this.flushing = written;
    try {
      await written;
    } catch (err) {
      for (const [cacheKey, entry] of batch) {
        // Not over a change written since (its counts moved with the entry it wrote).
        const current = this.written.get(cacheKey)?.version === entry.version;
        if (current && !this.pending.has(cacheKey)) this.pending.set(cacheKey, entry);
      }
      this.scheduleFlush();
      throw err;
    }
  }
}
