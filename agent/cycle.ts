/**
 * One cycle of the agent's state machine (DESIGN §7, STYLE habit 8). Each state has one handler:
 * entered with the state already on disk, it does that state's side effect and answers with the
 * event that leads on (a Step). The runner persists the event's state (state.ts's TRANSITIONS, the
 * only place that decides where an event leads) before the next handler's side effect.
 *
 *   idle ─checkin→ checking ─offer→ downloading ─downloaded→ verifying ─verified→ applying
 *   applying ─applied→ pending-confirm ─confirmed→ reporting ─reported→ idle
 *   verifying ─deferred→ waiting ─window-open→ verifying (the image waits for update.apply)
 *   (refusals and failures lead to reporting, a failed checkin or download back to idle)
 *
 * A cycle first finishes what a previous run left (the RECOVERY handlers, entered in whatever state
 * the record says), then checks in and follows the offer until the machine is back to idle, or a
 * step ends the cycle early (stopped, the script asked to exit, a report not delivered).
 */

import type { AgentCore } from './core.ts';
import { interrupted, recoverApplying } from './recovery.ts';
import { confirm, report } from './report-states.ts';
import type { ApplyAction } from './script-output.ts';
import type { AgentEvent, AgentStateName, PersistedState, ReportRecord } from './state.ts';
import type { CycleResult } from './types.ts';
import { applyUpdate, awaitApplyWindow, checkIn, download, verify } from './update-states.ts';

export type CycleEnd = Omit<CycleResult, 'reports'>;

/** What one cycle's handlers hand each other. */
export interface Cycle {
  readonly signal: AbortSignal;
  /** Reports made in this cycle. */
  readonly reports: ReportRecord[];
  /** The cycle's outcome when it ends now. */
  result?: CycleEnd;
  /** sha256 of the downloaded image, for verifying. */
  digest?: string;
  /** What the applied update asked of the agent; `restart` is honoured before confirming. */
  action?: ApplyAction;
}

/** What a handler did. */
export interface Step {
  /** Where the state leads; persisted (with `patch`) before the next handler runs. Absent: stay. */
  readonly event?: AgentEvent;
  readonly patch?: Partial<PersistedState>;
  /** The cycle's outcome, when this step decides it. */
  readonly result?: CycleEnd;
  /** The cycle ends after this step. */
  readonly end?: boolean;
}

export type Handler = (core: AgentCore, cycle: Cycle) => Step | Promise<Step>;
export type Handlers = Readonly<Record<Exclude<AgentStateName, 'idle'>, Handler>>;

/** The states of a cycle under way. */
export const HANDLERS: Handlers = {
  checking: checkIn,
  downloading: download,
  verifying: verify,
  waiting: awaitApplyWindow,
  applying: applyUpdate,
  'pending-confirm': confirm,
  reporting: report,
};

/** A state found on disk at the start of a cycle, where a previous run stopped; the states after it take HANDLERS. */
export const RECOVERY: Handlers = {
  checking: interrupted,
  downloading: interrupted,
  verifying: interrupted,
  // Nothing was under way: the image waits on disk for its window as before the restart.
  waiting: awaitApplyWindow,
  applying: recoverApplying,
  'pending-confirm': confirm,
  reporting: report,
};

/**
 * Runs the handlers from the current state until the machine is back to idle or a step ends the cycle;
 * returns the state it stopped in. The state found on entry is handled by `entry` (the recovery
 * table at the start of a cycle), every state after it by `handlers`.
 */
export async function runStates(
  core: AgentCore,
  handlers: Handlers,
  cycle: Cycle,
  entry: Handlers = handlers,
): Promise<AgentStateName> {
  let state = core.state.state;
  let table = entry;
  while (state !== 'idle') {
    const step = await table[state](core, cycle);
    table = handlers;
    if (step.result) cycle.result = step.result;
    if (step.event) core.go(step.event, step.patch);
    state = core.state.state;
    if (step.end) break;
  }
  return state;
}

/**
 * One full cycle: recovery, then checkin and whatever the answer leads to. `tables` are replaceable so
 * a unit test can inject faults into the states that need a network (test/unit/agent-cycle.test.ts).
 */
export async function runCycle(
  core: AgentCore,
  signal: AbortSignal,
  tables: { readonly handlers: Handlers; readonly recovery: Handlers } = {
    handlers: HANDLERS,
    recovery: RECOVERY,
  },
): Promise<CycleResult> {
  const cycle: Cycle = { signal, reports: [] };
  const done = (end: CycleEnd): CycleResult => ({ ...end, reports: cycle.reports });
  if (!core.config.enabled) return done({ outcome: 'disabled' });

  const recovered = await runStates(core, tables.handlers, cycle, tables.recovery);
  if (recovered === 'reporting') return done({ outcome: 'error', error: 'Report not delivered; will retry' });
  // Stopped while waiting for a script left running, that script asked the agent to exit, or the
  // verified image still waits for its apply window.
  if (recovered !== 'idle') return done(cycle.result!);

  cycle.result = undefined;
  core.go('checkin');
  const ended = await runStates(core, tables.handlers, cycle);
  const result = cycle.result!;
  return done(ended === 'reporting' && !result.error ? { ...result, error: 'Report not delivered' } : result);
}
