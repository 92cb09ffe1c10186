/**
 * The handlers of a state found on disk at the start of a cycle: a previous run was killed, lost
 * power or was stopped in it. pending-confirm and reporting simply carry on (report-states.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApplyAction, endScriptGroup, scriptActionIn, scriptStillRunning } from './apply.ts';
import { type AgentCore, seconds } from './core.ts';
import type { Cycle, Step } from './cycle.ts';

/** How often a restart checks whether the update script a previous run left behind is over. */
const ORPHAN_POLL_MS = 200;

/**
 * checking, downloading, verifying: start over from idle. The checkin asks again; a download resumes
 * from its record at the next offer; verification runs again after it.
 */
export function interrupted(core: AgentCore): Step {
  core.log.info(`Resuming after an interrupted ${core.state.state} step`);
  return { event: 'interrupted' };
}

/**
 * applying: a script that outlived the agent may still switch the version, so the update is confirmed
 * once it is over, honouring an `exit` or `restart` it printed as the agent that started it would have.
 */
export async function recoverApplying(core: AgentCore, cycle: Cycle): Promise<Step> {
  core.log.warn(`The agent stopped while applying update ${core.state.apply?.update ?? '?'}`);
  const orphan = await awaitOrphanedScript(core, cycle.signal);
  if (orphan === 'stopped') return { end: true, result: { outcome: 'error', error: 'Agent stopped' } };
  const apply = core.state.apply;
  // A script killed at its deadline failed, whatever it printed before (as in runScript).
  const action =
    apply?.script && orphan !== 'killed'
      ? (scriptActionIn(core.scriptOutput.stdout) ?? orphan.action)
      : undefined;
  if (apply && action === 'exit') {
    core.log.info(`Update ${apply.update} asks the agent to exit; the next start confirms it`);
    return {
      event: 'interrupted',
      patch: { apply: { ...apply, exitRequested: true } },
      result: { outcome: 'exit', update: apply.update, version: apply.version },
      end: true,
    };
  }
  cycle.action = action;
  return { event: 'interrupted' };
}

/**
 * Waits for an update script left running by a previous agent process, up to its applyTimeout
 * counted from its start, then ends its process group. Meanwhile its output file is kept from
 * growing past a few MiB, remembering any `exit` or `restart` line emptied away.
 */
async function awaitOrphanedScript(
  core: AgentCore,
  signal: AbortSignal,
): Promise<'stopped' | 'killed' | { action?: ApplyAction }> {
  const script = core.state.apply?.script;
  if (!script || !scriptStillRunning(script)) return {};
  const deadline = script.startedAt + core.config.applyTimeout * 1000;
  core.log.warn(
    `Update script (process group ${script.pid}) is still running; waiting up to ${seconds(deadline - core.now())} for it`,
  );
  let action: ApplyAction | undefined;
  while (scriptStillRunning(script)) {
    if (signal.aborted) return 'stopped';
    if (core.now() >= deadline) {
      core.log.warn(`Update script (process group ${script.pid}) ran past update.applyTimeout; killing it`);
      await endScriptGroup(script.pid);
      return 'killed';
    }
    action = scriptActionIn(core.scriptOutput.stdout, { empty: true }) ?? action;
    await sleep(ORPHAN_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
  return signal.aborted ? 'stopped' : action ? { action } : {};
}
