/**
 * The device agent as a library: `new Agent(options)`, `agent.on('device:update', …)`,
 * `await agent.checkin()` for one cycle, `agent.start()` / `await agent.stop()` for the schedule.
 *
 * One cycle (cycle.ts): finish what a previous run left (confirm a pending apply, resend a report,
 * resume a download), check in, and for an offer: check it, download, verify, apply, confirm, report.
 * Each state is one handler; the persisted state machine of state.ts moves before each side effect.
 *
 * `device:update` contract. Listeners are called in registration order with
 * `{ path, version, update, checksum, size }` and awaited, before `scripts.update` runs. A listener
 * returns (or resolves to):
 *   undefined                         it only observed the update;
 *   { applied: true, action? }        it installed the update itself (`action` as the script's
 *                                     `restart`/`exit` stdout line, see apply.ts);
 *   { applied: false, error? }        the update failed: nothing else runs, `failed` is reported.
 * A listener that throws or rejects fails the update the same way. The update counts as applied
 * when a listener applied it or the script exited 0; with neither, it fails. The image file is
 * deleted once the apply step is over, so copy it if it is needed longer. Success is confirmed by
 * comparing the running version with the new one: pass `runningVersion` when the embedding code,
 * not ioto.json5, knows the version.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentCore } from './core.ts';
import { runCycle } from './cycle.ts';
import { errorLine } from './errors.ts';
import { nextAfterFailure } from './schedule.ts';
import type { AgentStateName } from './state.ts';
import type { AgentOptions, CycleResult, DownloadProgress, StateChange, UpdateListener } from './types.ts';

export type {
  AgentOptions,
  ApplyResult,
  CycleOutcome,
  CycleResult,
  DeviceUpdateEvent,
  DownloadProgress,
  StateChange,
  UpdateListener,
} from './types.ts';

/** Longest single sleep of the schedule loop, so clock changes are noticed (and timers stay in range). */
const MAX_SLEEP_MS = 3_600_000;

export interface Agent {
  on(event: 'device:update', listener: UpdateListener): this;
  on(event: 'state', listener: (change: StateChange) => void): this;
  on(event: 'progress', listener: (progress: DownloadProgress) => void): this;
  /** The schedule loop ended because the update script asked the agent to exit. */
  on(event: 'exit', listener: (result: CycleResult) => void): this;
  once(event: 'device:update', listener: UpdateListener): this;
  once(event: 'state', listener: (change: StateChange) => void): this;
  once(event: 'progress', listener: (progress: DownloadProgress) => void): this;
  once(event: 'exit', listener: (result: CycleResult) => void): this;
}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface only narrows EventEmitter's listener types.
export class Agent extends EventEmitter {
  private readonly core: AgentCore;
  private unlock: (() => void) | undefined;
  private current: Promise<CycleResult> | undefined;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();

  constructor(options: AgentOptions) {
    super();
    this.core = new AgentCore(options, {
      state: (change) => this.emit('state', change),
      progress: (progress) => this.emit('progress', progress),
      updateListeners: () => this.rawListeners('device:update') as UpdateListener[],
    });
  }

  get deviceId(): string {
    return this.core.config.device.id;
  }

  get stateName(): AgentStateName {
    return this.core.state.state;
  }

  /** Epoch ms of the next scheduled checkin. */
  get nextCheckinAt(): number {
    return this.core.nextCycleAt();
  }

  /** Runs one full cycle now. Concurrent calls share the cycle under way. */
  checkin(): Promise<CycleResult> {
    if (!this.current) {
      this.current = this.cycle().finally(() => {
        this.current = undefined;
      });
    }
    return this.current;
  }

  /** Checks in on the schedule until stop(), or until the update script asks the agent to exit. */
  start(): void {
    if (this.loop) return;
    this.acquire();
    this.abort = new AbortController();
    this.loop = this.runLoop(this.abort.signal);
  }

  /**
   * Ends the schedule and interrupts a checkin or download under way (a partial download is kept
   * for resuming). An update script under way is stopped: its process group gets SIGTERM, then
   * SIGKILL after a grace period, and the apply stays recorded as interrupted, so the next start
   * confirms it against the running version or reports it failed. A `device:update` listener under
   * way is awaited. Releases the state directory.
   */
  async stop(): Promise<void> {
    this.abort.abort(new Error('Agent stopped'));
    await this.loop;
    await this.current?.catch(() => undefined);
    this.loop = undefined;
    this.unlock?.();
    this.unlock = undefined;
  }

  private acquire(): void {
    this.unlock ??= this.core.lock();
  }

  private cycle(): Promise<CycleResult> {
    this.acquire();
    // A checkin() after stop() gets a fresh signal; one under start() shares the loop's.
    if (this.abort.signal.aborted && !this.loop) this.abort = new AbortController();
    return runCycle(this.core, this.abort.signal);
  }

  private async runLoop(signal: AbortSignal): Promise<void> {
    const core = this.core;
    if (!core.config.enabled) {
      core.log.info('Updates are disabled (services.update or update.enable is false)');
      return;
    }
    while (!signal.aborted) {
      const wait = core.nextCycleAt() - core.now();
      if (wait > 0) {
        core.log.debug(`Next checkin in ${Math.round(wait / 1000)} s`);
        try {
          await sleep(Math.min(wait, MAX_SLEEP_MS), undefined, { signal });
        } catch {
          return;
        }
        continue;
      }
      try {
        const result = await this.checkin();
        if (result.outcome === 'exit') {
          this.emit('exit', result);
          return;
        }
      } catch (err) {
        if (signal.aborted) return;
        // An unexpected fault (disk error writing the state): retry on the backoff, never spin.
        core.log.error(`Cycle failed: ${errorLine(err)}`);
        const failures = core.state.checkinFailures + 1;
        core.state = {
          ...core.state,
          checkinFailures: failures,
          nextCheckin: nextAfterFailure(core.now(), failures, core.config, core.random),
        };
      }
    }
  }
}
