/**
 * Running the update script (`scripts.update`) and the optional version command (`scripts.version`).
 *
 * Script contract (also in scripts/update):
 *   invoked as `<script> <absolute image path>`, working directory unchanged, environment plus
 *   UPDATE_PATH, UPDATE_VERSION, UPDATE_ID, UPDATE_CHECKSUM, UPDATE_SIZE, UPDATE_PRODUCT, UPDATE_DEVICE,
 *   UPDATE_CURRENT_VERSION, UPDATE_CONFIG (absolute path of ioto.json5, when known), UPDATE_STATE_DIR.
 *   Exit 0 = applied. Any other exit, a signal or running past `update.applyTimeout` = failed (the
 *   whole process group is killed on timeout). The image file is deleted after the script returns.
 *   A stdout line `restart` or `exit` (as in Ioto) tells the agent what the update needs:
 *     restart  the agent re-reads its configuration and confirms the update at once;
 *     exit     the agent exits with code 3 without confirming; the next start (a supervisor restart,
 *              a reboot) confirms. Use it when the new software only runs after a restart.
 */
import { spawn } from 'node:child_process';
import { ApplyError } from './errors.ts';

export type ApplyAction = 'restart' | 'exit';

export interface ScriptRun {
  readonly script: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Each line the script prints, for the log. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface ScriptOutcome {
  readonly code: number;
  readonly action?: ApplyAction;
  /** Last stdout line and last stderr line, for error messages. */
  readonly lastOut: string;
  readonly lastErr: string;
}

/** How long a script gets between SIGTERM and SIGKILL once its time is up. */
const KILL_GRACE_MS = 3000;
/** After the script exits, background children may hold its pipes open: wait this long for them. */
const PIPE_DRAIN_MS = 500;

/** Runs the script; resolves with its exit code, rejects only when it cannot run or times out. */
export function runScript(run: ScriptRun): Promise<ScriptOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(run.script, run.args, {
      env: { ...process.env, ...run.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group, so a timeout kills what the script started too.
      detached: true,
    });
    let action: ApplyAction | undefined;
    let lastOut = '';
    let lastErr = '';
    let timedOut = false;
    const lines = (stream: 'stdout' | 'stderr') => {
      let rest = '';
      return (chunk: Buffer) => {
        const parts = (rest + chunk.toString('utf8')).split('\n');
        rest = parts.pop()!.slice(-4096);
        for (const raw of parts) take(raw, stream);
      };
    };
    const take = (raw: string, stream: 'stdout' | 'stderr') => {
      const line = raw.trim();
      if (!line) return;
      if (stream === 'stdout') {
        lastOut = line;
        if (line === 'restart' || line === 'exit') action = line;
      } else {
        lastErr = line;
      }
      run.onLine?.(line, stream);
    };
    child.stdout.on('data', lines('stdout'));
    child.stderr.on('data', lines('stderr'));

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    }, run.timeoutMs);
    const onAbort = () => killGroup('SIGTERM');
    run.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      clearTimeout(timer);
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      reject(new ApplyError(`Cannot run update script ${run.script}: ${code}`, { cause: err }));
    });
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drain: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = () => {
      if (settled || !exited) return;
      settled = true;
      clearTimeout(drain);
      // A background process the script left running must not keep the agent alive through the pipes.
      child.stdout.destroy();
      child.stderr.destroy();
      clearTimeout(killTimer);
      const { code, signal } = exited;
      if (timedOut) {
        reject(new ApplyError(`Update script timed out after ${run.timeoutMs / 1000} s and was killed`));
      } else if (signal) {
        reject(new ApplyError(`Update script was killed by ${signal}${lastErr ? `: ${lastErr}` : ''}`));
      } else {
        resolve({ code: code ?? 1, ...(action ? { action } : {}), lastOut, lastErr });
      }
    };
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      exited = { code, signal };
      drain = setTimeout(finish, PIPE_DRAIN_MS);
    });
    // 'close' follows 'exit' once the pipes closed, so the last lines have been read.
    child.on('close', finish);
  });
}

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
