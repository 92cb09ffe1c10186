/**
 * The update script's process group: ending it at its deadline or when the agent stops (SIGTERM to
 * the whole group, SIGKILL after a grace period), and finding, after a restart, whether a group a
 * previous agent process left is still there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { bootId, groupAlive, isAlive, type ProcessIdentity, processStartTime } from './proc.ts';

/** How long a script gets between SIGTERM and SIGKILL once its time is up. */
export const KILL_GRACE_MS = 3000;

/** Sends `signal` to process group `pgid`, if it is still there. */
export function signalGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pgid) process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Whether the process group of a script started by an earlier agent process is still there: never
 * after a reboot, and not when the leader's PID now names another process (another start time). The
 * leader may have exited while its children run on: the group id stays theirs until the last ends.
 */
export function scriptStillRunning(script: ProcessIdentity): boolean {
  const boot = bootId();
  if (script.boot && boot && script.boot !== boot) return false;
  if (!groupAlive(script.pid)) return false;
  if (script.start && isAlive(script.pid)) {
    const start = processStartTime(script.pid);
    if (start && start !== script.start) return false;
  }
  return true;
}

/** Ends a process group as a timeout does: SIGTERM, then SIGKILL after the grace period. */
export async function endScriptGroup(pgid: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  for (let waited = 0; waited < KILL_GRACE_MS && groupAlive(pgid); waited += 100) await sleep(100);
  signalGroup(pgid, 'SIGKILL');
}
