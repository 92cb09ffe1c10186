/**
 * Running the update script (`scripts.update`) and the optional version command (`scripts.version`).
 * The runner's parts: script.ts (spawn, deadline, settling), script-output.ts (output files, lines,
 * the `restart`/`exit` actions), script-group.ts (ending a process group, finding one left running).
 *
 * Script contract (also in scripts/update):
 *   invoked as `<script> <absolute image path>`, working directory unchanged, environment plus
 *   UPDATE_PATH, UPDATE_VERSION, UPDATE_ID, UPDATE_CHECKSUM, UPDATE_SIZE, UPDATE_PRODUCT, UPDATE_DEVICE,
 *   UPDATE_CURRENT_VERSION, UPDATE_CONFIG (absolute path of ioto.json5, when known), UPDATE_STATE_DIR.
 *   Exit 0 = applied. Any other exit, a signal or running past `update.applyTimeout` = failed. The
 *   script runs in a process group of its own; on timeout, and when the agent stops, the whole group
 *   gets SIGTERM and, after KILL_GRACE_MS, SIGKILL, before the step settles: nothing it started
 *   outlives it. The image file is deleted after the script returns.
 *   A stdout line `restart` or `exit` (as in Ioto) tells the agent what the update needs:
 *     restart  the agent re-reads its configuration and confirms the update at once;
 *     exit     the agent exits with code 3 without confirming; the next start (a supervisor restart,
 *              a reboot) confirms. Use it when the new software only runs after a restart.
 */
import { ApplyError } from './errors.ts';
import { runScript, type ScriptRun } from './script.ts';
import type { ApplyAction } from './script-output.ts';

export { runScript, type ScriptOutcome, type ScriptRun } from './script.ts';
export { endScriptGroup, scriptStillRunning } from './script-group.ts';
export { type ApplyAction, scriptActionIn } from './script-output.ts';

/** Runs the update script on an image; resolves with the action it asked for, rejects with ApplyError. */
export async function runUpdateScript(run: ScriptRun): Promise<ApplyAction | undefined> {
  const outcome = await runScript(run);
  if (outcome.code !== 0) {
    const detail = outcome.lastErr || outcome.lastOut;
    throw new ApplyError(`Update script exited with code ${outcome.code}${detail ? `: ${detail}` : ''}`);
  }
  return outcome.action;
}

/** Runs `scripts.version` through the shell; its last stdout line is the running version. */
export async function runVersionCommand(command: string, timeoutMs: number): Promise<string> {
  const outcome = await runScript({ script: '/bin/sh', args: ['-c', command], env: {}, timeoutMs });
  if (outcome.code !== 0) {
    throw new ApplyError(
      `scripts.version exited with code ${outcome.code}${outcome.lastErr ? `: ${outcome.lastErr}` : ''}`,
    );
  }
  return outcome.lastOut;
}
