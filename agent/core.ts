/**
 * What the state handlers work with: the persisted record and the one way to move it (`go`), the
 * configuration and cloud client, the downloads directory and the running version.
 */
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DeviceObject } from '#core/types.ts';
import { runVersionCommand } from './apply.ts';
import { CloudClient } from './cloud.ts';
import { type AgentConfig, loadAgentConfig, readConfiguredVersion } from './config.ts';
import { errorLine } from './errors.ts';
import { type Logger, silentLogger } from './log.ts';
import { DEFAULT_UPDATE_BACKOFF, dueAt, type UpdateBackoff } from './schedule.ts';
import {
  type AgentEvent,
  type DownloadRecord,
  nextState,
  type Offer,
  type PersistedState,
  StateStore,
  stateDirError,
} from './state.ts';
import type { AgentOptions, DownloadProgress, StateChange, UpdateListener } from './types.ts';
import { CronWindow } from './windows.ts';

/** How the core tells the embedding Agent what happened. */
export interface CoreEvents {
  state(change: StateChange): void;
  progress(progress: DownloadProgress): void;
  /** The `device:update` listeners, in registration order. */
  updateListeners(): readonly UpdateListener[];
}

export class AgentCore {
  config: AgentConfig;
  cloud: CloudClient;
  state: PersistedState;
  /** The version the device runs, as sent in checkins. */
  running: string;
  readonly store: StateStore;
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
  readonly backoff: UpdateBackoff;
  readonly stateDir: string;
  readonly downloads: string;
  /** Where the update script's stdout and stderr go (ScriptRun.output). */
  readonly scriptOutput: { readonly stdout: string; readonly stderr: string };
  /** update.schedule and update.apply, parsed once per pattern (a `restart` reload may change them). */
  private readonly windows = new Map<string, CronWindow>();

  constructor(
    readonly options: AgentOptions,
    readonly events: CoreEvents,
  ) {
    this.config = options.config;
    this.cloud = new CloudClient(
      this.config.api,
      this.config.token,
      options.requestTimeoutMs,
      this.config.proxy,
    );
    this.log = options.log ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.backoff = options.updateBackoff ?? DEFAULT_UPDATE_BACKOFF;
    // Absolute, so the update script gets an absolute image path whatever the working directory.
    this.stateDir = resolve(options.stateDir);
    this.store = new StateStore(this.stateDir);
    this.downloads = join(this.stateDir, 'downloads');
    this.scriptOutput = {
      stdout: join(this.stateDir, 'update-script.out'),
      stderr: join(this.stateDir, 'update-script.err'),
    };
    this.state = this.store.load();
    if (this.store.discarded) {
      this.log.warn(`State record unreadable, moved to ${this.store.discarded}; starting fresh`);
    }
    this.running = this.config.version;
  }

  /** `update.apply`: when a verified image may be applied; undefined means at once. */
  get applyWindow(): CronWindow | undefined {
    return this.windowOf(this.config.apply);
  }

  /** `update.schedule`: when a scheduled checkin may run; undefined means whenever it is due. */
  get checkinWindow(): CronWindow | undefined {
    return this.windowOf(this.config.schedule);
  }

  /**
   * Epoch ms when the schedule loop runs the next cycle: a verified image waiting for its apply window
   * wakes at the window; otherwise the checkin is due once the period passed, in a minute the schedule allows.
   */
  nextCycleAt(): number {
    const now = this.now();
    // A window that never opens again is refused by the config check; should one, look again in an hour.
    const never = now + 3_600_000;
    if (this.state.state === 'waiting') return this.applyWindow?.nextOpen(now) ?? never;
    const due = dueAt(this.state, now);
    return this.checkinWindow ? (this.checkinWindow.nextOpen(due) ?? never) : due;
  }

  /** Moves the state machine: the new record is on disk before this returns. */
  go(event: AgentEvent, patch: Partial<PersistedState> = {}): void {
    const from = this.state.state;
    const to = nextState(from, event);
    this.state = { ...this.state, ...patch, state: to };
    this.store.save(this.state);
    this.log.debug(`State ${from} -> ${to} (${event})`);
    this.events.state({ from, to, event });
  }

  /** Persists data of the current state (download checkpoint) without a transition. */
  patch(patch: Partial<PersistedState>): void {
    this.state = { ...this.state, ...patch };
    this.store.save(this.state);
  }

  /** Locks the state directory and readies the downloads directory; returns the unlock. */
  lock(): () => void {
    const unlock = this.store.lock();
    try {
      mkdirSync(this.downloads, { recursive: true, mode: 0o700 });
      this.removeStrayDownloads();
    } catch (err) {
      unlock();
      throw stateDirError(this.stateDir, err, 'downloads');
    }
    return unlock;
  }

  /** The update script printed `restart`: take up the configuration it may have changed. */
  reload(): void {
    if (!this.config.files) return;
    try {
      this.config = loadAgentConfig(this.config.files);
      this.cloud = new CloudClient(
        this.config.api,
        this.config.token,
        this.options.requestTimeoutMs,
        this.config.proxy,
      );
      this.log.info('Configuration reloaded');
    } catch (err) {
      this.log.error(`Keeping the previous configuration: ${errorLine(err)}`);
    }
  }

  checkinBody(): DeviceObject {
    const { device } = this.config;
    return { ...device.properties, id: device.id, product: device.product, version: this.running };
  }

  async readRunningVersion(): Promise<string> {
    if (this.options.runningVersion) return this.options.runningVersion();
    if (this.config.versionCommand) return runVersionCommand(this.config.versionCommand, 30_000);
    if (this.config.files) return readConfiguredVersion(this.config.files.ioto);
    return this.running;
  }

  /** The download record to resume for `offer`, or a fresh one (the old partial image removed). */
  downloadRecordFor(offer: Offer): DownloadRecord {
    const d = this.state.download;
    if (d && d.update === offer.update && d.checksum === offer.checksum && d.size === offer.size) return d;
    this.discardDownload();
    return {
      update: offer.update,
      checksum: offer.checksum,
      size: offer.size,
      file: `${offer.update.replace(/[^A-Za-z0-9._-]/g, '_')}.img`,
      offset: 0,
    };
  }

  imagePath(record: DownloadRecord): string {
    return join(this.downloads, record.file);
  }

  discardDownload(): void {
    const d = this.state.download;
    if (d) removeQuiet(this.imagePath(d));
  }

  private windowOf(pattern: string | undefined): CronWindow | undefined {
    if (pattern === undefined) return undefined;
    const known = this.windows.get(pattern);
    if (known) return known;
    const window = new CronWindow(pattern);
    this.windows.set(pattern, window);
    return window;
  }

  private removeStrayDownloads(): void {
    const keep = this.state.download?.file;
    for (const name of readdirSync(this.downloads)) {
      if (name !== keep) removeQuiet(join(this.downloads, name));
    }
  }
}

function removeQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/** `ms` as whole seconds, for log lines. */
export function seconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))} s`;
}
