/**
 * Running the update script (`scripts.update`) and the optional version command (`scripts.version`).
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
import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplyError, errorLine } from './errors.ts';
import { bootId, groupAlive, isAlive, type ProcessIdentity, processStartTime } from './proc.ts';

export type ApplyAction = 'restart' | 'exit';

export interface ScriptRun {
  readonly script: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Aborting stops the script like a timeout does: SIGTERM to its group, SIGKILL after a grace period. */
  readonly signal?: AbortSignal;
  /**
   * Called synchronously right after the spawn with the script's PID, which is its process group id,
   * before the script itself starts: it runs only once this returned (see GATE).
   */
  readonly onSpawn?: (pid: number) => void;
  /** Each line the script prints, for the log. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Files (new on each run, 0600) that take the script's stdout and stderr instead of pipes, read
   * back every OUTPUT_POLL_MS. A script writing to a pipe dies of SIGPIPE at its next line once the
   * agent is gone; writing to a file, it runs to its end and the next start waits for it. Without
   * pipes, 'close' follows 'exit' at once: output a background child writes later is not waited for.
   */
  readonly output?: { readonly stdout: string; readonly stderr: string };
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
/** After the script exits, background children may hold its pipes open (no `output`): wait this long for them. */
const PIPE_DRAIN_MS = 500;
/** While a killed script's group empties, how often to look whether it has. */
const GROUP_POLL_MS = 25;
/** How often the output files of a script (ScriptRun.output) are read for new lines. */
const OUTPUT_POLL_MS = 200;

/**
 * With `onSpawn`, the script starts behind this gate: a shell that waits for a line on its stdin, sent
 * once `onSpawn` has recorded the PID, then execs the script in its place (same PID, same process
 * group). Were the agent killed between the spawn and that record, the pipe closes, the shell exits
 * without running anything, and the next start cannot miss a script that is still running.
 */
const GATE = 'read -r _ || exit 125; exec "$0" "$@"';

/** Runs the script; resolves with its exit code, rejects when it cannot run, times out or is stopped. */
export function runScript(run: ScriptRun): Promise<ScriptOutcome> {
  return new Promise((resolve, reject) => {
    if (run.signal?.aborted) {
      reject(new ApplyError(`Update script ${run.script} not started: the agent is stopping`));
      return;
    }
    const gated = run.onSpawn !== undefined;
    if (gated) {
      // Behind the gate, a missing script would only show as the shell's exit code 127.
      try {
        accessSync(run.script, constants.X_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        reject(new ApplyError(`Cannot run update script ${run.script}: ${code}`, { cause: err }));
        return;
      }
    }
    let files: OutputFiles | undefined;
    try {
      files = run.output ? new OutputFiles(run.output) : undefined;
    } catch (err) {
      const { code, path } = err as NodeJS.ErrnoException;
      const what = `${path ?? 'file'}: ${code ?? (err as Error).message}`;
      reject(new ApplyError(`Cannot create the update script's output file ${what}`, { cause: err }));
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(
        gated ? '/bin/sh' : run.script,
        gated ? ['-c', GATE, run.script, ...run.args] : run.args,
        {
          env: { ...process.env, ...run.env },
          // stdin is the gate's pipe; without a gate it is closed at once, so the script reads end-of-file.
          stdio: ['pipe', files?.stdoutFd ?? 'pipe', files?.stderrFd ?? 'pipe'],
          // Own process group, so a timeout kills what the script started too.
          detached: true,
        },
      );
    } catch (err) {
      // spawn() itself threw (a bad environment value, E2BIG): nothing started.
      files?.close();
      reject(new ApplyError(`Cannot run update script ${run.script}: ${errorLine(err)}`, { cause: err }));
      return;
    }
    let action: ApplyAction | undefined;
    let lastOut = '';
    let lastErr = '';
    /** Why the group is being killed: the timeout, or stop(). */
    let ending: 'timeout' | 'stop' | undefined;
    /** SIGKILL went to the group (or it was found empty): nothing of it can outlive the settlement. */
    let groupEnded = false;
    const lines = (stream: 'stdout' | 'stderr') => {
      let rest = '';
      // A character split between two reads is decoded whole.
      const decoder = new StringDecoder('utf8');
      const feed = (chunk: Buffer) => {
        const parts = (rest + decoder.write(chunk)).split('\n');
        rest = parts.pop()!.slice(-4096);
        for (const raw of parts) take(raw, stream);
      };
      /** The last line may lack its newline (`printf 1.2.3`, a VERSION file without one). */
      const flush = () => {
        const last = rest + decoder.end();
        rest = '';
        take(last, stream);
      };
      /**
       * Output was skipped: the partial line before the gap and the one after it are fragments, not
       * lines (a fragment could read `exit`), so both are dropped and the gap is only logged.
       */
      let resync = false;
      const gap = (bytes: number) => {
        rest = '';
        decoder.end();
        resync = true;
        run.onLine?.(`[${bytes} bytes of output skipped]`, stream);
      };
      const feedAfterGap = (chunk: Buffer) => {
        if (!resync) {
          feed(chunk);
          return;
        }
        const newline = chunk.indexOf(10);
        if (newline < 0) return;
        resync = false;
        feed(chunk.subarray(newline + 1));
      };
      return { feed: feedAfterGap, flush, gap };
    };
    const take = (raw: string, stream: 'stdout' | 'stderr') => {
      const line = raw.trim();
      if (!line) return;
      if (stream === 'stdout') {
        lastOut = line;
        action = actionOf(line) ?? action;
      } else {
        lastErr = line;
      }
      run.onLine?.(line, stream);
    };
    // The gate or the script may exit before reading its stdin: that exit is what gets reported.
    child.stdin?.on('error', () => {});
    if (!gated) child.stdin?.end();
    const stdoutLines = lines('stdout');
    const stderrLines = lines('stderr');
    child.stdout?.on('data', stdoutLines.feed);
    child.stderr?.on('data', stderrLines.feed);
    const streams = [stdoutLines, stderrLines] as const;
    /** A file that cannot be read any more (an I/O error) ends the reading, not the script. */
    const readOutput = () => {
      try {
        files?.read(streams);
      } catch (err) {
        clearInterval(outputPoll);
        run.onLine?.(`[output no longer readable: ${errorLine(err)}]`, 'stderr');
      }
    };
    const outputPoll = files ? setInterval(readOutput, OUTPUT_POLL_MS) : undefined;

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    let killTimer: NodeJS.Timeout | undefined;
    // The whole group gets SIGTERM, then SIGKILL after the grace period, even when the script itself
    // exits at once: a child that ignores SIGTERM must not outlive the apply step.
    const endGroup = (why: 'timeout' | 'stop') => {
      if (ending) return;
      ending = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => {
        killGroup('SIGKILL');
        groupEnded = true;
        finish();
      }, KILL_GRACE_MS);
    };
    const timer = setTimeout(() => endGroup('timeout'), run.timeoutMs);
    const onAbort = () => endGroup('stop');
    run.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      run.signal?.removeEventListener('abort', onAbort);
      clearInterval(outputPoll);
      files?.close();
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      const through = gated ? ' (started through /bin/sh)' : '';
      reject(new ApplyError(`Cannot run update script ${run.script}${through}: ${code}`, { cause: err }));
    });
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drain: NodeJS.Timeout | undefined;
    let groupPoll: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = () => {
      if (settled || !exited) return;
      // Being killed, the script is gone but its group may not be: settle once the group is empty
      // or the grace period is over and SIGKILL went out.
      if (ending && !groupEnded) {
        if (child.pid && groupAlive(child.pid)) {
          // Its last members are usually reaped a few ms later: look again soon.
          groupPoll ??= setInterval(finish, GROUP_POLL_MS);
          return;
        }
        groupEnded = true;
      }
      settled = true;
      clearInterval(groupPoll);
      clearTimeout(drain);
      clearInterval(outputPoll);
      try {
        files?.drain(streams);
      } catch {
        // Already logged by a poll, or nothing more to read.
      } finally {
        files?.close();
      }
      stdoutLines.flush();
      stderrLines.flush();
      // A background process the script left running must not keep the agent alive through the pipes.
      child.stdout?.destroy();
      child.stderr?.destroy();
      clearTimeout(killTimer);
      const { code, signal } = exited;
      if (ending === 'timeout') {
        reject(new ApplyError(`Update script timed out after ${run.timeoutMs / 1000} s and was killed`));
      } else if (ending === 'stop') {
        reject(new ApplyError('Update script stopped: the agent is stopping'));
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
    if (!child.pid) return;
    try {
      run.onSpawn?.(child.pid);
      // The record is on disk: open the gate. The script then reads end-of-file on its stdin.
      child.stdin?.end('\n');
    } catch (err) {
      // Unrecorded, the script could outlive a crash of the agent unnoticed: end it before it does harm.
      killGroup('SIGKILL');
      settled = true;
      clearTimeout(timer);
      clearInterval(outputPoll);
      files?.close();
      run.signal?.removeEventListener('abort', onAbort);
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      reject(err);
    }
  });
}

/** Bytes of a script's output read per poll: a script printing faster cannot hold the event loop. */
const OUTPUT_READ_BYTES = 256 * 1024;
/** Past this many unread bytes, the reader skips to the newest output (and says so in the log). */
const OUTPUT_MAX_LAG = 4 << 20;
/** Once read up to this size, an output file is emptied: a chatty script cannot fill the disk. */
const OUTPUT_MAX_FILE = 4 << 20;

interface OutputStream {
  feed(chunk: Buffer): void;
  /** `bytes` of output were skipped before the next feed. */
  gap(bytes: number): void;
}

interface OutputFile {
  /** The agent's write end, kept to empty the file (the child's copy appends: O_APPEND). */
  readonly writeFd: number;
  readonly readFd: number;
  position: number;
}

/**
 * The output files of a script. Each run gets new files (the old ones unlinked first), so a
 * background process of an earlier script, still holding its file, cannot write into this run's.
 */
class OutputFiles {
  private readonly files: OutputFile[] = [];
  private readonly buffer = Buffer.allocUnsafe(OUTPUT_READ_BYTES);

  constructor(paths: { readonly stdout: string; readonly stderr: string }) {
    try {
      for (const path of [paths.stdout, paths.stderr]) this.files.push(openOutputFile(path));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get stdoutFd(): number {
    return this.files[0]!.writeFd;
  }

  get stderrFd(): number {
    return this.files[1]!.writeFd;
  }

  /** Hands what was written since the last call (at most OUTPUT_READ_BYTES a file) to the streams. */
  read(streams: readonly [OutputStream, OutputStream]): number {
    let total = 0;
    this.files.forEach((file, i) => {
      const stream = streams[i]!;
      const { size } = fstatSync(file.readFd);
      if (size < file.position) file.position = 0;
      if (size - file.position > OUTPUT_MAX_LAG) {
        const skipped = size - OUTPUT_READ_BYTES - file.position;
        file.position += skipped;
        stream.gap(skipped);
      }
      const n = readSync(file.readFd, this.buffer, 0, OUTPUT_READ_BYTES, file.position);
      file.position += n;
      total += n;
      if (n > 0) stream.feed(this.buffer.subarray(0, n));
      // Emptied only when nothing arrived since the read: the script appends (O_APPEND) from 0 on.
      if (file.position >= OUTPUT_MAX_FILE && fstatSync(file.readFd).size === file.position) {
        ftruncateSync(file.writeFd, 0);
        file.position = 0;
      }
    });
    return total;
  }

  /** Reads what is left once the script is over (bounded: a background child may still be writing). */
  drain(streams: readonly [OutputStream, OutputStream]): void {
    for (let round = 0; round < 32 && this.read(streams) > 0; round++) {}
  }

  close(): void {
    for (const file of this.files.splice(0)) {
      closeSync(file.writeFd);
      closeSync(file.readFd);
    }
  }
}

function openOutputFile(path: string): OutputFile {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const writeFd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND | constants.O_NOFOLLOW,
    0o600,
  );
  let readFd: number | undefined;
  try {
    readFd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const written = fstatSync(writeFd);
    const read = fstatSync(readFd);
    if (written.ino !== read.ino || written.dev !== read.dev) {
      throw Object.assign(new Error(`${path} was replaced while being opened`), { path, code: 'ECHANGED' });
    }
    return { writeFd, readFd, position: 0 };
  } catch (err) {
    closeSync(writeFd);
    if (readFd !== undefined) closeSync(readFd);
    throw err;
  }
}

/**
 * The last `restart` or `exit` line of a script's output file (its last OUTPUT_MAX_FILE bytes), as
 * runScript would have taken it. With `empty`, for a script that outlived the agent that read its
 * output: only a file grown past OUTPUT_MAX_FILE is read, then emptied (the script appends: O_APPEND).
 */
export function scriptActionIn(path: string, options: { empty?: boolean } = {}): ApplyAction | undefined {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const { size } = fstatSync(fd);
      if (options.empty && size <= OUTPUT_MAX_FILE) return undefined;
      const length = Math.min(size, OUTPUT_MAX_FILE);
      const buf = Buffer.alloc(length);
      const n = readSync(fd, buf, 0, length, size - length);
      text = buf.subarray(0, n).toString('utf8');
      // Read from the middle of the file, the first line is a fragment.
      if (length < size) text = text.slice(text.indexOf('\n') + 1);
      if (options.empty && fstatSync(fd).size === size) ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  let action: ApplyAction | undefined;
  for (const line of text.split('\n')) action = actionOf(line.trim()) ?? action;
  return action;
}

/** A stdout line `restart` or `exit` (as in Ioto) is the script telling the agent what the update needs. */
function actionOf(line: string): ApplyAction | undefined {
  return line === 'restart' || line === 'exit' ? line : undefined;
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
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pgid, name);
    } catch {
      // Already gone.
    }
  };
  signal('SIGTERM');
  for (let waited = 0; waited < KILL_GRACE_MS && groupAlive(pgid); waited += 100) await sleep(100);
  signal('SIGKILL');
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
