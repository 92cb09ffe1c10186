/** The device registry: each device's last checkin (last seen, version, properties), written sparingly. */
import { createHash } from 'node:crypto';
import type { DeviceCheckin } from '#core/types.ts';
import { BoundedMap } from './bounded-map.ts';
import type { Table } from './dynamo.ts';
import { keys } from './keys.ts';

export interface RegistryOptions {
  /** Skip rewriting a device's entry when unchanged and younger than this. */
  readonly refreshMs: number;
  /**
   * When set, entries are buffered and written in batches this often instead of once per checkin
   * (the local cloud, where dynalite's write cost dominates a checkin). Unset in Lambda, whose
   * container may freeze before a timer fires.
   */
  readonly batchMs?: number;
  readonly now: () => number;
}

type DeviceEntry = ReturnType<typeof keys.device> & { version: string; lastSeen: string; properties: string };

export class DeviceRegistry {
  private readonly written = new BoundedMap<string, { fingerprint: string; at: number }>(100_000);
  private readonly pending = new Map<string, DeviceEntry>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly table: Table,
    private readonly options: RegistryOptions,
  ) {}

  /** Records a checkin. Unchanged devices are rewritten only every `refreshMs`. */
  async record(device: DeviceCheckin): Promise<void> {
    const properties = JSON.stringify(device.body);
    // Typical bodies are kept as they are (cheaper than hashing on every checkin); large ones as a
    // digest, or up to 100,000 cached bodies of up to 16 KiB would be gigabytes.
    const fingerprint =
      properties.length <= 512 ? properties : createHash('sha256').update(properties).digest('base64');
    const cacheKey = `${device.product}\u0000${device.id}`;
    const now = this.options.now();
    const seen = this.written.get(cacheKey);
    if (seen && seen.fingerprint === fingerprint && now - seen.at < this.options.refreshMs) return;
    const entry = {
      ...keys.device(device.product, device.id),
      version: device.version,
      lastSeen: new Date(now).toISOString(),
      properties,
    };
    this.written.set(cacheKey, { fingerprint, at: now });
    if (this.options.batchMs === undefined) {
      try {
        await this.table.put(entry);
      } catch (err) {
        this.written.delete(cacheKey);
        throw err;
      }
      return;
    }
    this.pending.set(cacheKey, entry);
    this.scheduleFlush();
  }

  /**
   * After an applied update the device runs the new version: record it now rather than at its
   * next checkin (possibly a day later), so `updraft stats` shows the rollout.
   */
  async recordAppliedVersion(product: string, deviceId: string, version: string): Promise<void> {
    const lastSeen = new Date(this.options.now()).toISOString();
    // A buffered entry (local cloud) would otherwise land later with the old version.
    const pending = this.pending.get(`${product}\u0000${deviceId}`);
    if (pending) {
      pending.version = version;
      pending.lastSeen = lastSeen;
    }
    await this.table.update(keys.device(product, deviceId), {
      set: { version, lastSeen },
      condition: 'attribute_exists(pk)',
    });
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
   * Writes buffered entries (25 per request). A failed batch stays buffered for the next flush;
   * only the local cloud buffers, and it flushes on stop.
   */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    try {
      await this.table.putMany(batch.map(([, entry]) => entry));
    } catch (err) {
      for (const [cacheKey, entry] of batch) {
        if (!this.pending.has(cacheKey)) this.pending.set(cacheKey, entry);
      }
      this.scheduleFlush();
      throw err;
    }
  }
}
