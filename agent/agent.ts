/**
 * The device agent as a library: `new Agent(options)`, `agent.on('device:update', …)`,
 * `await agent.checkin()` for one cycle, `agent.start()` / `await agent.stop()` for the schedule.
 *
 * One cycle: finish what a previous run left (confirm a pending apply, resend a report, resume a
 * download), check in, and for an offer: check it, download, verify, apply, confirm, report. Every
 * step moves the persisted state machine of state.ts before its side effect.
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
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeviceObject } from '#core/types.ts';
import { compareVersions, isSemver } from '#core/version.ts';
import {
  type ApplyAction,
  endScriptGroup,
  runUpdateScript,
  runVersionCommand,
  scriptActionIn,
  scriptStillRunning,
} from './apply.ts';
import { type CheckinAnswer, CloudClient } from './cloud.ts';
import { type AgentConfig, loadAgentConfig, readConfiguredVersion } from './config.ts';
import { type DownloadRetry, downloadImage } from './download.ts';
import { ApplyError, DownloadRefusedError, errorLine, HttpStatusError, VerificationError } from './errors.ts';
import { type Logger, silentLogger } from './log.ts';
import { identify } from './proc.ts';
import {
  DEFAULT_UPDATE_BACKOFF,
  dueAt,
  MAX_DOWNLOAD_CYCLES,
  nextAfterCheckin,
  nextAfterFailure,
  recordUpdateFailure,
  type UpdateBackoff,
  updateHeldBack,
} from './schedule.ts';
import {
  type AgentEvent,
  type AgentStateName,
  type ApplyRecord,
  type DownloadRecord,
  type FailureRecord,
  nextState,
  type Offer,
  type PersistedState,
  type ReportRecord,
  StateStore,
  stateDirError,
} from './state.ts';
import { checkDigest, checkOffer } from './verify.ts';

export interface DeviceUpdateEvent {
  /** Absolute path of the verified image. */
  readonly path: string;
  readonly version: string;
  /** Update id, as reported back to the cloud. */
  readonly update: string;
  readonly checksum: string;
  readonly size: number;
}

export interface ApplyResult {
  readonly applied: boolean;
  /** Why it failed; becomes the report's `error`. */
  readonly error?: string;
  readonly action?: ApplyAction;
}

export type UpdateListener = (
  event: DeviceUpdateEvent,
) => ApplyResult | undefined | Promise<ApplyResult | undefined>;

export interface StateChange {
  readonly from: AgentStateName;
  readonly to: AgentStateName;
  readonly event: AgentEvent;
}

export interface DownloadProgress {
  readonly update: string;
  readonly received: number;
  readonly size: number;
}

export type CycleOutcome =
  /** services.update or update.enable is false. */
  | 'disabled'
  | 'no-update'
  | 'applied'
  /** Download refused, apply failed or not confirmed; reported as failed. */
  | 'failed'
  /** Signature, version rule or checksum refused the update; reported as rejected. */
  | 'rejected'
  /** The offered update is held back after repeated failures. */
  | 'skipped'
  /** The update script asked the agent to exit; the next start confirms. */
  | 'exit'
  /** Checkin, download or report did not get through; retried on the schedule. */
  | 'error';

export interface CycleResult {
  readonly outcome: CycleOutcome;
  readonly update?: string;
  readonly version?: string;
  readonly error?: string;
  /** Reports made in this cycle, the confirmation of an earlier update included. */
  readonly reports: readonly ReportRecord[];
}

export interface AgentOptions {
  readonly config: AgentConfig;
  /** Directory for the state record and downloads; created 0700 if missing. */
  readonly stateDir: string;
  readonly log?: Logger;
  /** Clock and randomness, replaceable in tests. */
  readonly now?: () => number;
  readonly random?: () => number;
  /** The running version, to confirm an update. Default: `scripts.version`, else ioto.json5's `version`. */
  readonly runningVersion?: () => string | Promise<string>;
  readonly downloadRetry?: Partial<DownloadRetry>;
  readonly updateBackoff?: UpdateBackoff;
  /** Timeout of checkin and report requests (default 30 s). */
  readonly requestTimeoutMs?: number;
}

/** Longest single sleep of the schedule loop, so clock changes are noticed (and timers stay in range). */
const MAX_SLEEP_MS = 3_600_000;
/** recover() found that an update script left by the previous run asked the agent to exit. */
const EXIT_REQUESTED = Symbol('exit requested');

/** How often a restart checks whether the update script a previous run left behind is over. */
const ORPHAN_POLL_MS = 200;

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
  private config: AgentConfig;
  private cloud: CloudClient;
  private readonly store: StateStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly backoff: UpdateBackoff;
  private readonly stateDir: string;
  private readonly downloads: string;
  /** Where the update script's stdout and stderr go (ScriptRun.output). */
  private readonly scriptOutput: { readonly stdout: string; readonly stderr: string };
  private state: PersistedState;
  /** The version the device runs, as sent in checkins. */
  private running: string;
  private unlock: (() => void) | undefined;
  private current: Promise<CycleResult> | undefined;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();

  constructor(private readonly options: AgentOptions) {
    super();
    this.config = options.config;
    this.cloud = new CloudClient(this.config.api, this.config.token, options.requestTimeoutMs);
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

  get deviceId(): string {
    return this.config.device.id;
  }

  get stateName(): AgentStateName {
    return this.state.state;
  }

  /** Epoch ms of the next scheduled checkin. */
  get nextCheckinAt(): number {
    return dueAt(this.state, this.now());
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
    if (this.unlock) return;
    const unlock = this.store.lock();
    try {
      mkdirSync(this.downloads, { recursive: true, mode: 0o700 });
      this.removeStrayDownloads();
    } catch (err) {
      unlock();
      throw stateDirError(this.stateDir, err, 'downloads');
    }
    this.unlock = unlock;
  }

  private async runLoop(signal: AbortSignal): Promise<void> {
    if (!this.config.enabled) {
      this.log.info('Updates are disabled (services.update or update.enable is false)');
      return;
    }
    while (!signal.aborted) {
      const wait = dueAt(this.state, this.now()) - this.now();
      if (wait > 0) {
        this.log.debug(`Next checkin in ${Math.round(wait / 1000)} s`);
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
        this.log.error(`Cycle failed: ${errorLine(err)}`);
        const failures = this.state.checkinFailures + 1;
        this.state = {
          ...this.state,
          checkinFailures: failures,
          nextCheckin: nextAfterFailure(this.now(), failures, this.config, this.random),
        };
      }
    }
  }

  /** Moves the state machine: the new record is on disk before this returns. */
  private go(event: AgentEvent, patch: Partial<PersistedState> = {}): void {
    const from = this.state.state;
    const to = nextState(from, event);
    this.state = { ...this.state, ...patch, state: to };
    this.store.save(this.state);
    this.log.debug(`State ${from} -> ${to} (${event})`);
    this.emit('state', { from, to, event } satisfies StateChange);
  }

  /** Persists data of the current state (download checkpoint) without a transition. */
  private patch(patch: Partial<PersistedState>): void {
    this.state = { ...this.state, ...patch };
    this.store.save(this.state);
  }

  private async cycle(): Promise<CycleResult> {
    this.acquire();
    // A checkin() after stop() gets a fresh signal; one under start() shares the loop's.
    if (this.abort.signal.aborted && !this.loop) this.abort = new AbortController();
    const signal = this.abort.signal;
    const reports: ReportRecord[] = [];
    const result = (outcome: CycleOutcome, extra: Partial<CycleResult> = {}): CycleResult => ({
      outcome,
      reports,
      ...extra,
    });
    if (!this.config.enabled) return result('disabled');

    const unfinished = await this.recover(reports, signal);
    if (unfinished === EXIT_REQUESTED) {
      const apply = this.state.apply;
      return result('exit', apply ? { update: apply.update, version: apply.version } : {});
    }
    if (unfinished) return result('error', { error: unfinished });

    // Checkin.
    this.go('checkin');
    let answer: CheckinAnswer;
    try {
      answer = await this.cloud.checkin(this.checkinBody(), signal);
    } catch (err) {
      if (signal.aborted) {
        this.go('interrupted');
        return result('error', { error: 'Agent stopped' });
      }
      const failures = this.state.checkinFailures + 1;
      const retryAfter = err instanceof HttpStatusError ? err.retryAfter : undefined;
      const next = nextAfterFailure(this.now(), failures, this.config, this.random, retryAfter);
      this.go('checkin-failed', { checkinFailures: failures, nextCheckin: next });
      this.log.warn(
        `Checkin failed (${failures} in a row, next try in ${seconds(next - this.now())}): ${errorLine(err)}`,
      );
      return result('error', { error: errorLine(err) });
    }
    const now = this.now();
    const schedule: Partial<PersistedState> = {
      lastCheckin: now,
      checkinFailures: 0,
      nextCheckin: nextAfterCheckin(now, this.config, this.random, answer.nextCheckin),
    };
    const offer = answer.offer;
    if (!offer) {
      this.discardDownload();
      this.go('no-update', { ...schedule, offer: undefined, download: undefined });
      this.log.info(`No update for ${this.config.device.id} (running ${this.running})`);
      return result('no-update');
    }
    const about = { update: offer.update, version: offer.version };
    this.log.info(`Update ${offer.update} offered: version ${offer.version}, ${offer.size} bytes`);

    // Failures of ids no longer offered are forgotten: a new update starts with a clean slate.
    const failed = keepOnly(this.state.failed, offer.update);
    const held = updateHeldBack(failed[offer.update], now, this.backoff);
    if (held.held) {
      this.go('skip', { ...schedule, failed });
      const failures = failed[offer.update]?.failures ?? 0;
      this.log.warn(
        `Update ${offer.update} held back after ${failures} failure(s) ${
          held.until ? `until ${new Date(held.until).toISOString()}` : 'until the cloud offers another update'
        }`,
      );
      return result('skipped', about);
    }
    try {
      checkOffer(offer, {
        product: this.config.device.product,
        running: this.running,
        keys: this.config.keys,
      });
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      return this.fail('refuse', 'rejected', offer, err, { ...schedule, failed }, reports, signal);
    }

    // Download.
    const record = this.downloadRecordFor(offer);
    this.go('offer', { ...schedule, failed, offer, download: record });
    let digest: string;
    try {
      digest = await this.download(offer, record, signal);
    } catch (err) {
      if (signal.aborted) {
        this.go('interrupted');
        return result('error', { ...about, error: 'Agent stopped' });
      }
      if (err instanceof DownloadRefusedError) {
        this.discardDownload();
        return this.fail('download-refused', 'failed', offer, err, { download: undefined }, reports, signal);
      }
      // Kept for resuming at the next checkin (a fresh checkin also renews an expired URL), which
      // comes on a backoff of its own: the checkin succeeded, so checkinFailures says nothing here.
      // A cycle that added bytes starts the count over, so a slow link is never given up on.
      const now = this.now();
      const current = this.state.download ?? record;
      const progressed = current.offset > record.offset;
      const failures = progressed ? 1 : (record.failures ?? 0) + 1;
      if (failures >= MAX_DOWNLOAD_CYCLES) {
        this.discardDownload();
        const gaveUp = new DownloadRefusedError(
          `Download failed ${failures} times in a row: ${errorLine(err)}`,
          { cause: err },
        );
        return this.fail(
          'download-refused',
          'failed',
          offer,
          gaveUp,
          { download: undefined },
          reports,
          signal,
        );
      }
      const next = nextAfterFailure(now, failures, this.config, this.random);
      this.go('download-failed', { download: { ...current, failures }, nextCheckin: next });
      this.log.warn(
        `Download of update ${offer.update} failed (${failures} of ${MAX_DOWNLOAD_CYCLES} without progress, next try in ${seconds(next - now)}), will resume: ${errorLine(err)}`,
      );
      return result('error', { ...about, error: errorLine(err) });
    }

    // Verify.
    this.go('downloaded');
    try {
      checkDigest(digest, offer);
    } catch (err) {
      this.discardDownload();
      return this.fail('rejected', 'rejected', offer, err, { download: undefined }, reports, signal);
    }

    // Apply: the pending record is on disk before anything runs.
    const apply: ApplyRecord = { update: offer.update, version: offer.version, from: this.running };
    this.go('verified', { apply });
    this.log.info(`Applying update ${offer.update} (version ${offer.version})`);
    let action: ApplyAction | undefined;
    try {
      action = await this.applyImage(offer, this.imagePath(record), apply, signal);
    } catch (err) {
      if (signal.aborted) {
        // stop() ended the script: the state stays `applying`, and the next start confirms against
        // the running version (the script may have switched it before it was stopped).
        this.log.warn(`Stopped while applying update ${offer.update}; the next start confirms or fails it`);
        return result('error', { ...about, error: 'Agent stopped while applying' });
      }
      this.discardDownload();
      return this.fail(
        'apply-failed',
        'failed',
        offer,
        err,
        { apply: undefined, download: undefined },
        reports,
        signal,
      );
    }
    this.discardDownload();
    this.go('applied', {
      apply: { ...apply, finished: true, ...(action === 'exit' ? { exitRequested: true } : {}) },
      download: undefined,
      offer: undefined,
    });
    if (action === 'exit') {
      this.log.info(`Update ${offer.update} asks the agent to exit; the next start confirms it`);
      return result('exit', about);
    }
    if (action === 'restart') this.reload();

    const report = await this.confirm(reports, signal);
    return result(report.success ? 'applied' : 'failed', {
      ...about,
      ...(report.error
        ? { error: report.error }
        : this.state.report
          ? { error: 'Report not delivered' }
          : {}),
    });
  }

  /**
   * Finishes what a previous run left; returns an error line when a report still cannot be sent, or
   * EXIT_REQUESTED when an update script that outlived that run asked the agent to exit.
   */
  private async recover(
    reports: ReportRecord[],
    signal: AbortSignal,
  ): Promise<string | typeof EXIT_REQUESTED | undefined> {
    switch (this.state.state) {
      case 'idle':
        return undefined;
      case 'checking':
      case 'downloading':
      case 'verifying':
        this.log.info(`Resuming after an interrupted ${this.state.state} step`);
        this.go('interrupted');
        return undefined;
      case 'applying': {
        this.log.warn(`The agent stopped while applying update ${this.state.apply?.update ?? '?'}`);
        // A script that outlived the agent may still switch the version: confirm once it is over,
        // honouring an `exit` or `restart` it printed as the agent that started it would have.
        const orphan = await this.awaitOrphanedScript(signal);
        if (orphan === 'stopped') return 'Agent stopped';
        {
          const apply = this.state.apply;
          // A script killed at its deadline failed, whatever it printed before (as in runScript).
          const action =
            apply?.script && orphan !== 'killed'
              ? (scriptActionIn(this.scriptOutput.stdout) ?? orphan.action)
              : undefined;
          if (apply && action === 'exit') {
            this.go('interrupted', { apply: { ...apply, exitRequested: true } });
            this.log.info(`Update ${apply.update} asks the agent to exit; the next start confirms it`);
            return EXIT_REQUESTED;
          }
          this.go('interrupted');
          if (action === 'restart') this.reload();
        }
        await this.confirm(reports, signal);
        break;
      }
      case 'pending-confirm':
        await this.confirm(reports, signal);
        break;
      case 'reporting':
        await this.sendReport(reports, signal);
        break;
    }
    return this.state.state === 'reporting' ? 'Report not delivered; will retry' : undefined;
  }

  /**
   * Waits for an update script left running by a previous agent process, up to its applyTimeout
   * counted from its start, then ends its process group. Meanwhile its output file is kept from
   * growing past a few MiB, remembering any `exit` or `restart` line emptied away.
   */
  private async awaitOrphanedScript(
    signal: AbortSignal,
  ): Promise<'stopped' | 'killed' | { action?: ApplyAction }> {
    const script = this.state.apply?.script;
    if (!script || !scriptStillRunning(script)) return {};
    const deadline = script.startedAt + this.config.applyTimeout * 1000;
    this.log.warn(
      `Update script (process group ${script.pid}) is still running; waiting up to ${seconds(deadline - this.now())} for it`,
    );
    let action: ApplyAction | undefined;
    while (scriptStillRunning(script)) {
      if (signal.aborted) return 'stopped';
      if (this.now() >= deadline) {
        this.log.warn(`Update script (process group ${script.pid}) ran past update.applyTimeout; killing it`);
        await endScriptGroup(script.pid);
        return 'killed';
      }
      action = scriptActionIn(this.scriptOutput.stdout, { empty: true }) ?? action;
      await sleep(ORPHAN_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
    return signal.aborted ? 'stopped' : action ? { action } : {};
  }

  /** Compares the running version with the pending update's and reports the outcome. */
  private async confirm(reports: ReportRecord[], signal: AbortSignal): Promise<ReportRecord> {
    const apply = this.state.apply!;
    let running: string;
    let problem: string | undefined;
    try {
      running = (await this.readRunningVersion()).trim();
      if (!isSemver(running)) problem = `the running version ${JSON.stringify(running)} is not SemVer 2.0`;
    } catch (err) {
      running = this.running;
      problem = `cannot read the running version: ${errorLine(err)}`;
    }
    const success = !problem && compareVersions(running, apply.version) === 0;
    if (isSemver(running)) this.running = running;
    let report: ReportRecord;
    let failed: Record<string, FailureRecord>;
    if (success) {
      report = { update: apply.update, success: true, status: 'applied', version: running };
      failed = keepOnly(this.state.failed, undefined);
      this.log.info(`Update ${apply.update} applied: running ${running}`);
    } else {
      const error =
        problem ??
        (apply.finished
          ? `Update applied but the running version is ${running}, expected ${apply.version}`
          : `Interrupted while applying; the running version is ${running}, expected ${apply.version}`);
      report = {
        update: apply.update,
        success: false,
        status: 'failed',
        error,
        version: isSemver(running) ? running : apply.from,
      };
      failed = {
        ...this.state.failed,
        [apply.update]: recordUpdateFailure(this.state.failed[apply.update], this.now(), this.backoff),
      };
      this.log.error(`Update ${apply.update} failed: ${error}`);
    }
    // After a restart the image may still be there; it is of no use once the outcome is known.
    this.discardDownload();
    this.go('confirmed', { apply: undefined, download: undefined, report, failed });
    await this.sendReport(reports, signal);
    return report;
  }

  /** Records a failed or rejected update, backs its id off, and reports it. */
  private async fail(
    event: AgentEvent,
    status: 'failed' | 'rejected',
    offer: Offer,
    err: unknown,
    patch: Partial<PersistedState>,
    reports: ReportRecord[],
    signal: AbortSignal,
  ): Promise<CycleResult> {
    const error = errorLine(err);
    const failedBefore = patch.failed ?? this.state.failed;
    const report: ReportRecord = {
      update: offer.update,
      success: false,
      status,
      error,
      version: this.running,
    };
    this.go(event, {
      ...patch,
      offer: undefined,
      report,
      failed: {
        ...failedBefore,
        [offer.update]: recordUpdateFailure(failedBefore[offer.update], this.now(), this.backoff),
      },
    });
    this.log.error(`Update ${offer.update} ${status}: ${error}`);
    await this.sendReport(reports, signal);
    return { outcome: status, update: offer.update, version: offer.version, error, reports };
  }

  /** Sends the pending report. Failures keep it (state `reporting`) for the next cycle. */
  private async sendReport(reports: ReportRecord[], signal: AbortSignal): Promise<void> {
    const report = this.state.report!;
    reports.push(report);
    try {
      await this.cloud.report({ id: this.config.device.id, ...report }, signal);
      this.go('reported', { report: undefined });
      this.log.info(`Reported update ${report.update}: ${report.status}`);
    } catch (err) {
      if (err instanceof HttpStatusError && isFinal(err.status)) {
        // The cloud will never take it (update deleted, report malformed): resending would loop.
        this.go('reported', { report: undefined });
        this.log.warn(`Report of update ${report.update} refused and dropped: ${err.message}`);
        return;
      }
      const failures = this.state.checkinFailures + 1;
      const retryAfter = err instanceof HttpStatusError ? err.retryAfter : undefined;
      this.go('report-failed', {
        checkinFailures: failures,
        nextCheckin: nextAfterFailure(this.now(), failures, this.config, this.random, retryAfter),
      });
      this.log.warn(`Report of update ${report.update} failed, will retry: ${errorLine(err)}`);
    }
  }

  private async download(offer: Offer, record: DownloadRecord, signal: AbortSignal): Promise<string> {
    if (record.offset > 0)
      this.log.info(`Resuming download of update ${offer.update} at byte ${record.offset}`);
    let nextEmit = 0;
    const result = await downloadImage({
      url: offer.url,
      size: offer.size,
      file: this.imagePath(record),
      offset: record.offset,
      stallTimeoutMs: this.config.stallTimeout * 1000,
      signal,
      ...(this.options.downloadRetry ? { retry: this.options.downloadRetry } : {}),
      onCheckpoint: (offset) => this.patch({ download: { ...record, offset } }),
      onProgress: (received, size) => {
        if (received < nextEmit && received < size) return;
        nextEmit = received + (1 << 20);
        this.emit('progress', { update: offer.update, received, size } satisfies DownloadProgress);
      },
      onRetry: (attempt, err, offset) =>
        this.log.info(
          `Download interrupted (${errorLine(err)}); attempt ${attempt + 1} resumes at byte ${offset}`,
        ),
    });
    this.log.info(`Downloaded update ${offer.update} in ${result.attempts} attempt(s)`);
    return result.sha256;
  }

  private async applyImage(
    offer: Offer,
    path: string,
    apply: ApplyRecord,
    signal: AbortSignal,
  ): Promise<ApplyAction | undefined> {
    const event: DeviceUpdateEvent = {
      path,
      version: offer.version,
      update: offer.update,
      checksum: offer.checksum,
      size: offer.size,
    };
    let applied = false;
    let action: ApplyAction | undefined;
    for (const listener of this.rawListeners('device:update') as UpdateListener[]) {
      let answer: ApplyResult | undefined;
      try {
        answer = await listener(event);
      } catch (err) {
        throw new ApplyError(`device:update listener failed: ${errorLine(err)}`, { cause: err });
      }
      if (answer === undefined) continue;
      if (!answer.applied)
        throw new ApplyError(answer.error ?? 'device:update listener did not apply the update');
      applied = true;
      action = answer.action ?? action;
    }
    const script = this.config.updateScript;
    if (script) {
      const scriptAction = await runUpdateScript({
        script,
        args: [path],
        env: this.scriptEnv(offer, path),
        timeoutMs: this.config.applyTimeout * 1000,
        signal,
        // On disk before the script can get far: a restart then waits for this very process group.
        onSpawn: (pid) =>
          this.patch({ apply: { ...apply, script: { ...identify(pid), startedAt: this.now() } } }),
        onLine: (line, stream) => this.log.debug(`update script ${stream}: ${line}`),
        // Files, not pipes: a script must outlive a killed agent to the end of its work.
        output: this.scriptOutput,
      });
      applied = true;
      action = scriptAction ?? action;
    }
    if (!applied) {
      throw new ApplyError(
        'Nothing applied the update: set scripts.update or handle the device:update event',
      );
    }
    return action;
  }

  private scriptEnv(offer: Offer, path: string): Record<string, string> {
    return {
      UPDATE_PATH: path,
      UPDATE_VERSION: offer.version,
      UPDATE_ID: offer.update,
      UPDATE_CHECKSUM: offer.checksum,
      UPDATE_SIZE: String(offer.size),
      UPDATE_PRODUCT: this.config.device.product,
      UPDATE_DEVICE: this.config.device.id,
      UPDATE_CURRENT_VERSION: this.running,
      UPDATE_STATE_DIR: this.stateDir,
      ...(this.config.files ? { UPDATE_CONFIG: this.config.files.ioto } : {}),
    };
  }

  private async readRunningVersion(): Promise<string> {
    if (this.options.runningVersion) return this.options.runningVersion();
    if (this.config.versionCommand) return runVersionCommand(this.config.versionCommand, 30_000);
    if (this.config.files) return readConfiguredVersion(this.config.files.ioto);
    return this.running;
  }

  /** The update script printed `restart`: take up the configuration it may have changed. */
  private reload(): void {
    if (!this.config.files) return;
    try {
      this.config = loadAgentConfig(this.config.files);
      this.cloud = new CloudClient(this.config.api, this.config.token, this.options.requestTimeoutMs);
      this.log.info('Configuration reloaded');
    } catch (err) {
      this.log.error(`Keeping the previous configuration: ${errorLine(err)}`);
    }
  }

  private checkinBody(): DeviceObject {
    const { device } = this.config;
    return { ...device.properties, id: device.id, product: device.product, version: this.running };
  }

  private downloadRecordFor(offer: Offer): DownloadRecord {
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

  private imagePath(record: DownloadRecord): string {
    return join(this.downloads, record.file);
  }

  private discardDownload(): void {
    const d = this.state.download;
    if (d) removeQuiet(this.imagePath(d));
  }

  private removeStrayDownloads(): void {
    const keep = this.state.download?.file;
    for (const name of readdirSync(this.downloads)) {
      if (name !== keep) removeQuiet(join(this.downloads, name));
    }
  }
}

/** 4xx answers other than timeouts and throttling will not change on a retry. */
function isFinal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

function keepOnly(
  failed: Readonly<Record<string, FailureRecord>>,
  id: string | undefined,
): Record<string, FailureRecord> {
  const record = id === undefined ? undefined : failed[id];
  return record && id !== undefined ? { [id]: record } : {};
}

function removeQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))} s`;
}
