/**
 * The handlers that settle an update: pending-confirm (is the new version running?) and reporting
 * (tell the cloud), and the step every refusal or failure takes on its way to reporting.
 */
import { compareVersions, isSemver } from '#core/version.ts';
import type { AgentCore } from './core.ts';
import type { Cycle, Handler, Step } from './cycle.ts';
import { errorLine, HttpStatusError } from './errors.ts';
import { nextAfterFailure, recordUpdateFailure } from './schedule.ts';
import type { AgentEvent, FailureRecord, Offer, PersistedState, ReportRecord } from './state.ts';

/** pending-confirm: compares the running version with the pending update's; leads to confirmed. */
export async function confirm(core: AgentCore, cycle: Cycle): Promise<Step> {
  // The update script printed `restart`: the configuration it may have changed comes first.
  if (cycle.action === 'restart') {
    cycle.action = undefined;
    core.reload();
  }
  const apply = core.state.apply!;
  let running: string;
  let problem: string | undefined;
  try {
    running = (await core.readRunningVersion()).trim();
    if (!isSemver(running)) problem = `the running version ${JSON.stringify(running)} is not SemVer 2.0`;
  } catch (err) {
    running = core.running;
    problem = `cannot read the running version: ${errorLine(err)}`;
  }
  const success = !problem && compareVersions(running, apply.version) === 0;
  if (isSemver(running)) core.running = running;
  let report: ReportRecord;
  let failed: Record<string, FailureRecord>;
  if (success) {
    report = { update: apply.update, success: true, status: 'applied', version: running };
    failed = keepOnly(core.state.failed, undefined);
    core.log.info(`Update ${apply.update} applied: running ${running}`);
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
      ...core.state.failed,
      [apply.update]: recordUpdateFailure(core.state.failed[apply.update], core.now(), core.backoff),
    };
    core.log.error(`Update ${apply.update} failed: ${error}`);
  }
  // After a restart the image may still be there; it is of no use once the outcome is known.
  core.discardDownload();
  return {
    event: 'confirmed',
    patch: { apply: undefined, download: undefined, report, failed },
    result: {
      outcome: success ? 'applied' : 'failed',
      update: apply.update,
      version: apply.version,
      ...(report.error ? { error: report.error } : {}),
    },
  };
}

/** Sends a report to the cloud: CloudClient.report in the agent, replaceable to inject faults. */
export type SendReport = (core: AgentCore, report: ReportRecord, signal: AbortSignal) => Promise<void>;

/** reporting: sends the pending report; leads to reported, or report-failed (kept for the next cycle). */
export function reportThrough(send: SendReport): Handler {
  return async (core, cycle) => {
    const report = core.state.report!;
    cycle.reports.push(report);
    try {
      await send(core, report, cycle.signal);
    } catch (err) {
      return reportFailed(core, report, err);
    }
    core.log.info(`Reported update ${report.update}: ${report.status}`);
    return { event: 'reported', patch: { report: undefined } };
  };
}

export const report = reportThrough((core, report, signal) =>
  core.cloud.report({ id: core.config.device.id, ...report }, signal),
);

function reportFailed(core: AgentCore, report: ReportRecord, err: unknown): Step {
  if (err instanceof HttpStatusError && isFinal(err.status)) {
    // The cloud will never take it (update deleted, report malformed): resending would loop.
    core.log.warn(`Report of update ${report.update} refused and dropped: ${err.message}`);
    return { event: 'reported', patch: { report: undefined } };
  }
  const failures = core.state.checkinFailures + 1;
  const retryAfter = err instanceof HttpStatusError ? err.retryAfter : undefined;
  core.log.warn(`Report of update ${report.update} failed, will retry: ${errorLine(err)}`);
  return {
    event: 'report-failed',
    patch: {
      checkinFailures: failures,
      nextCheckin: nextAfterFailure(core.now(), failures, core.config, core.random, retryAfter),
    },
    end: true,
  };
}

/** Records a failed or rejected update, backs its id off, and leads to reporting it. */
export function failStep(
  core: AgentCore,
  event: AgentEvent,
  status: 'failed' | 'rejected',
  offer: Offer,
  err: unknown,
  patch: Partial<PersistedState>,
): Step {
  const error = errorLine(err);
  const failedBefore = patch.failed ?? core.state.failed;
  const report: ReportRecord = { update: offer.update, success: false, status, error, version: core.running };
  core.log.error(`Update ${offer.update} ${status}: ${error}`);
  return {
    event,
    patch: {
      ...patch,
      offer: undefined,
      report,
      failed: {
        ...failedBefore,
        [offer.update]: recordUpdateFailure(failedBefore[offer.update], core.now(), core.backoff),
      },
    },
    result: { outcome: status, update: offer.update, version: offer.version, error },
  };
}

/** The failure record of `id` alone: failures of updates no longer offered are forgotten. */
export function keepOnly(
  failed: Readonly<Record<string, FailureRecord>>,
  id: string | undefined,
): Record<string, FailureRecord> {
  const record = id === undefined ? undefined : failed[id];
  return record && id !== undefined ? { [id]: record } : {};
}

/** 4xx answers other than timeouts and throttling will not change on a retry. */
function isFinal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}
