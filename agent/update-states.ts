/**
 * The handlers of an update under way: checking → downloading → verifying → applying. Each is
 * entered with its state on disk and answers with the event that leads on (see cycle.ts).
 */
import { applyImage } from './apply-image.ts';
import type { CheckinAnswer } from './cloud.ts';
import { type AgentCore, seconds } from './core.ts';
import type { Cycle, CycleEnd, Handler, Step } from './cycle.ts';
import { downloadImage } from './download.ts';
import { DownloadRefusedError, errorLine, HttpStatusError, VerificationError } from './errors.ts';
import { failStep, keepOnly } from './report-states.ts';
import { MAX_DOWNLOAD_CYCLES, nextAfterCheckin, nextAfterFailure, updateHeldBack } from './schedule.ts';
import type { DownloadRecord, Offer, PersistedState } from './state.ts';
import type { DownloadProgress } from './types.ts';
import { checkDigest, checkOffer, hashFile } from './verify.ts';

/** Asks the cloud for an update: CloudClient.checkin in the agent, replaceable to inject faults. */
export type AskCloud = (core: AgentCore, signal: AbortSignal) => Promise<CheckinAnswer>;
/** Fetches the image of a download record; resolves with its sha256. */
export type FetchImage = (
  core: AgentCore,
  offer: Offer,
  record: DownloadRecord,
  signal: AbortSignal,
) => Promise<string>;

/** checking: asks the cloud; leads to offer, no-update, skip, refuse, checkin-failed or interrupted. */
export function checkInThrough(ask: AskCloud): Handler {
  return async (core, cycle) => {
    let answer: CheckinAnswer;
    try {
      answer = await ask(core, cycle.signal);
    } catch (err) {
      return checkinFailed(core, cycle, err);
    }
    return answered(core, answer);
  };
}

export const checkIn = checkInThrough((core, signal) => core.cloud.checkin(core.checkinBody(), signal));

function checkinFailed(core: AgentCore, cycle: Cycle, err: unknown): Step {
  if (cycle.signal.aborted)
    return { event: 'interrupted', result: { outcome: 'error', error: 'Agent stopped' } };
  const failures = core.state.checkinFailures + 1;
  const retryAfter = err instanceof HttpStatusError ? err.retryAfter : undefined;
  const next = nextAfterFailure(core.now(), failures, core.config, core.random, retryAfter);
  core.log.warn(
    `Checkin failed (${failures} in a row, next try in ${seconds(next - core.now())}): ${errorLine(err)}`,
  );
  return {
    event: 'checkin-failed',
    patch: { checkinFailures: failures, nextCheckin: next },
    result: { outcome: 'error', error: errorLine(err) },
  };
}

function answered(core: AgentCore, answer: CheckinAnswer): Step {
  const now = core.now();
  const schedule: Partial<PersistedState> = {
    lastCheckin: now,
    checkinFailures: 0,
    nextCheckin: nextAfterCheckin(now, core.config, core.random, answer.nextCheckin),
  };
  if (answer.offer) return considerOffer(core, answer.offer, schedule, now);
  core.discardDownload();
  core.log.info(`No update for ${core.config.device.id} (running ${core.running})`);
  return {
    event: 'no-update',
    patch: { ...schedule, offer: undefined, download: undefined },
    result: { outcome: 'no-update' },
  };
}

/** An offer is skipped while held back after failures, refused when checkOffer says so, else taken. */
function considerOffer(core: AgentCore, offer: Offer, schedule: Partial<PersistedState>, now: number): Step {
  core.log.info(`Update ${offer.update} offered: version ${offer.version}, ${offer.size} bytes`);
  // Failures of ids no longer offered are forgotten: a new update starts with a clean slate.
  const failed = keepOnly(core.state.failed, offer.update);
  const held = updateHeldBack(failed[offer.update], now, core.backoff);
  if (held.held) {
    const failures = failed[offer.update]?.failures ?? 0;
    core.log.warn(
      `Update ${offer.update} held back after ${failures} failure(s) ${
        held.until ? `until ${new Date(held.until).toISOString()}` : 'until the cloud offers another update'
      }`,
    );
    return { event: 'skip', patch: { ...schedule, failed }, result: { outcome: 'skipped', ...about(offer) } };
  }
  try {
    checkOffer(offer, { product: core.config.device.product, running: core.running, keys: core.config.keys });
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    return failStep(core, 'refuse', 'rejected', offer, err, { ...schedule, failed });
  }
  const record = core.downloadRecordFor(offer);
  return { event: 'offer', patch: { ...schedule, failed, offer, download: record } };
}

/** downloading: fetches (or resumes) the image; leads to downloaded, download-failed or download-refused. */
export function downloadThrough(fetchImage: FetchImage): Handler {
  return async (core, cycle) => {
    const offer = recorded(core.state.offer, 'offer');
    const record = recorded(core.state.download, 'download');
    try {
      cycle.digest = await fetchImage(core, offer, record, cycle.signal);
      return { event: 'downloaded' };
    } catch (err) {
      if (cycle.signal.aborted) {
        return {
          event: 'interrupted',
          result: { outcome: 'error', ...about(offer), error: 'Agent stopped' },
        };
      }
      if (err instanceof DownloadRefusedError) {
        core.discardDownload();
        return failStep(core, 'download-refused', 'failed', offer, err, { download: undefined });
      }
      return downloadFailed(core, offer, record, err);
    }
  };
}

/**
 * A failed download is kept for resuming at the next checkin (a fresh checkin also renews an expired
 * URL), which comes on a backoff of its own: the checkin succeeded, so checkinFailures says nothing
 * here. A cycle that added bytes starts the count over, so a slow link is never given up on.
 */
function downloadFailed(core: AgentCore, offer: Offer, record: DownloadRecord, err: unknown): Step {
  const now = core.now();
  const current = core.state.download ?? record;
  const progressed = current.offset > record.offset;
  const failures = progressed ? 1 : (record.failures ?? 0) + 1;
  if (failures >= MAX_DOWNLOAD_CYCLES) {
    core.discardDownload();
    const gaveUp = new DownloadRefusedError(`Download failed ${failures} times in a row: ${errorLine(err)}`, {
      cause: err,
    });
    return failStep(core, 'download-refused', 'failed', offer, gaveUp, { download: undefined });
  }
  const next = nextAfterFailure(now, failures, core.config, core.random);
  core.log.warn(
    `Download of update ${offer.update} failed (${failures} of ${MAX_DOWNLOAD_CYCLES} without progress, next try in ${seconds(next - now)}), will resume: ${errorLine(err)}`,
  );
  return {
    event: 'download-failed',
    patch: { download: { ...current, failures }, nextCheckin: next },
    result: { outcome: 'error', ...about(offer), error: errorLine(err) },
  };
}

const streamImage: FetchImage = async (core, offer, record, signal) => {
  if (record.offset > 0)
    core.log.info(`Resuming download of update ${offer.update} at byte ${record.offset}`);
  let nextEmit = 0;
  const retry = core.options.downloadRetry;
  const { throttleMs, proxy } = core.config;
  const result = await downloadImage({
    url: offer.url,
    size: offer.size,
    file: core.imagePath(record),
    offset: record.offset,
    stallTimeoutMs: core.config.stallTimeout * 1000,
    signal,
    ...(retry ? { retry } : {}),
    // update.throttle (Ioto) and the proxy variables read at start (config.ts).
    ...(throttleMs ? { throttleMs } : {}),
    ...(proxy ? { proxy } : {}),
    onCheckpoint: (offset) => core.patch({ download: { ...record, offset } }),
    onProgress: (received, size) => {
      if (received < nextEmit && received < size) return;
      nextEmit = received + (1 << 20);
      core.events.progress({ update: offer.update, received, size } satisfies DownloadProgress);
    },
    onRetry: (attempt, err, offset) =>
      core.log.info(
        `Download interrupted (${errorLine(err)}); attempt ${attempt + 1} resumes at byte ${offset}`,
      ),
  });
  core.log.info(`Downloaded update ${offer.update} in ${result.attempts} attempt(s)`);
  return result.sha256;
};

export const download = downloadThrough(streamImage);

/**
 * verifying: the image's sha256 against the offer (hashed from the file when it waited on disk);
 * leads to verified (the pending apply record), deferred (outside the apply window) or rejected.
 */
export async function verify(core: AgentCore, cycle: Cycle): Promise<Step> {
  const offer = recorded(core.state.offer, 'offer');
  try {
    const image = core.imagePath(recorded(core.state.download, 'download'));
    checkDigest(cycle.digest ?? (await hashFile(image)), offer);
  } catch (err) {
    core.discardDownload();
    return failStep(core, 'rejected', 'rejected', offer, err, { download: undefined });
  }
  cycle.digest = undefined;
  if (core.applyWindow && !core.applyWindow.allows(core.now())) return { event: 'deferred' };
  // The pending record is on disk before anything runs.
  return {
    event: 'verified',
    patch: { apply: { update: offer.update, version: offer.version, from: core.running } },
  };
}

/** waiting: a verified image kept on disk; leads to window-open once update.apply allows the apply. */
export function awaitApplyWindow(core: AgentCore): Step {
  const offer = recorded(core.state.offer, 'offer');
  const now = core.now();
  const opens = core.applyWindow?.nextOpen(now);
  if (opens === now || !core.applyWindow) return { event: 'window-open' };
  const when = opens === undefined ? 'never (no minute matches)' : `at ${new Date(opens).toISOString()}`;
  core.log.info(
    `Update ${offer.update} (version ${offer.version}) is verified; update.apply lets it apply ${when}`,
  );
  return { end: true, result: { outcome: 'waiting', ...about(offer), ...(opens ? { applyAt: opens } : {}) } };
}

/** applying: listeners and the update script; leads to applied or apply-failed, or stays when stopped. */
export async function applyUpdate(core: AgentCore, cycle: Cycle): Promise<Step> {
  const offer = recorded(core.state.offer, 'offer');
  const apply = recorded(core.state.apply, 'apply');
  const image = core.imagePath(recorded(core.state.download, 'download'));
  core.log.info(`Applying update ${offer.update} (version ${offer.version})`);
  try {
    cycle.action = await applyImage(core, offer, image, apply, cycle.signal);
  } catch (err) {
    if (cycle.signal.aborted) {
      // stop() ended the script: the state stays `applying`, and the next start confirms against
      // the running version (the script may have switched it before it was stopped).
      core.log.warn(`Stopped while applying update ${offer.update}; the next start confirms or fails it`);
      return {
        end: true,
        result: { outcome: 'error', ...about(offer), error: 'Agent stopped while applying' },
      };
    }
    core.discardDownload();
    return failStep(core, 'apply-failed', 'failed', offer, err, { apply: undefined, download: undefined });
  }
  core.discardDownload();
  const exit = cycle.action === 'exit';
  const step: Step = {
    event: 'applied',
    patch: {
      apply: { ...apply, finished: true, ...(exit ? { exitRequested: true } : {}) },
      download: undefined,
      offer: undefined,
    },
  };
  if (!exit) return step;
  core.log.info(`Update ${offer.update} asks the agent to exit; the next start confirms it`);
  return { ...step, end: true, result: { outcome: 'exit', ...about(offer) } };
}

function about(offer: Offer): Pick<CycleEnd, 'update' | 'version'> {
  return { update: offer.update, version: offer.version };
}

/** A record the state needs; the machine writes it on the way in, so its absence is a bug. */
function recorded<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`Agent state ${what} record missing`);
  return value;
}
