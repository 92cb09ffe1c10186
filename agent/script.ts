/**
 * Running one script in a process group of its own: the spawn (behind a gate when its PID must be
 * recorded first), its output (pipes or files, see script-output.ts), its deadline, and the settling
 * once it and its group are over. The update script's contract is in apply.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { ApplyError, errorLine } from './errors.ts';
import { groupAlive } from './proc.ts';
import { KILL_GRACE_MS, signalGroup } from './script-group.ts';
import {
  type ApplyAction,
  actionOf,
  LineSplitter,
  OutputFiles,
  type OutputStreamName,
} from './script-output.ts';

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
  readonly onLine?: (line: string, stream: OutputStreamName) => void;
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
    const { child, files } = spawnScript(run);
    new ScriptProcess(run, child, files, resolve, reject).openGate();
  });
}

/** Checks what can be checked before the spawn, then spawns; throws ApplyError when nothing started. */
function spawnScript(run: ScriptRun): { child: ChildProcess; files: OutputFiles | undefined } {
  if (run.signal?.aborted)
    throw new ApplyError(`Update script ${run.script} not started: the agent is stopping`);
  const gated = run.onSpawn !== undefined;
  if (gated) {
    // Behind the gate, a missing script would only show as the shell's exit code 127.
    try {
      accessSync(run.script, constants.X_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ApplyError(`Cannot run update script ${run.script}: ${code}`, { cause: err });
    }
  }
  let files: OutputFiles | undefined;
  try {
    files = run.output ? new OutputFiles(run.output) : undefined;
  } catch (err) {
    const { code, path } = err as NodeJS.ErrnoException;
    const what = `${path ?? 'file'}: ${code ?? (err as Error).message}`;
    throw new ApplyError(`Cannot create the update script's output file ${what}`, { cause: err });
  }
  try {
    const child = spawn(
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
    return { child, files };
  } catch (err) {
    // spawn() itself threw (a bad environment value, E2BIG): nothing started.
    files?.close();
    throw new ApplyError(`Cannot run update script ${run.script}: ${errorLine(err)}`, { cause: err });
  }
}

/** One spawned script, from its spawn to its settlement. */
class ScriptProcess {
  private readonly gated: boolean;
  private action: ApplyAction | undefined;
  private lastOut = '';
  private lastErr = '';
  private readonly lines: readonly [LineSplitter, LineSplitter];
  /** Why the group is being killed: the timeout, or stop(). */
  private ending: 'timeout' | 'stop' | undefined;
  /** SIGKILL went to the group (or it was found empty): nothing of it can outlive the settlement. */
  private groupEnded = false;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private settled = false;
  private readonly deadline: NodeJS.Timeout;
  private readonly outputPoll: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private drain: NodeJS.Timeout | undefined;
  private groupPoll: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.endGroup('stop');

  constructor(
    private readonly run: ScriptRun,
    private readonly child: ChildProcess,
    private readonly files: OutputFiles | undefined,
    private readonly resolve: (outcome: ScriptOutcome) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.gated = run.onSpawn !== undefined;
    const splitter = (stream: OutputStreamName) =>
      new LineSplitter(
        (line) => this.take(line, stream),
        (text) => run.onLine?.(text, stream),
      );
    this.lines = [splitter('stdout'), splitter('stderr')];
    // The gate or the script may exit before reading its stdin: that exit is what gets reported.
    child.stdin?.on('error', () => {});
    if (!this.gated) child.stdin?.end();
    child.stdout?.on('data', (chunk: Buffer) => this.lines[0].feed(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.lines[1].feed(chunk));
    this.outputPoll = files ? setInterval(() => this.readOutput(), OUTPUT_POLL_MS) : undefined;
    this.deadline = setTimeout(() => this.endGroup('timeout'), run.timeoutMs);
    run.signal?.addEventListener('abort', this.onAbort, { once: true });
    child.on('error', (err) => this.failToStart(err));
    child.on('exit', (code, signal) => {
      clearTimeout(this.deadline);
      run.signal?.removeEventListener('abort', this.onAbort);
      this.exited = { code, signal };
      this.drain = setTimeout(() => this.finish(), PIPE_DRAIN_MS);
    });
    // 'close' follows 'exit' once the pipes closed, so the last lines have been read.
    child.on('close', () => this.finish());
  }

  /** Records the PID through onSpawn, then lets the script run. */
  openGate(): void {
    const pid = this.child.pid;
    if (!pid) return;
    try {
      this.run.onSpawn?.(pid);
      // The record is on disk: open the gate. The script then reads end-of-file on its stdin.
      this.child.stdin?.end('\n');
    } catch (err) {
      // Unrecorded, the script could outlive a crash of the agent unnoticed: end it before it does harm.
      signalGroup(pid, 'SIGKILL');
      this.settled = true;
      clearTimeout(this.deadline);
      clearInterval(this.outputPoll);
      this.files?.close();
      this.run.signal?.removeEventListener('abort', this.onAbort);
      this.child.stdin?.destroy();
      this.child.stdout?.destroy();
      this.child.stderr?.destroy();
      this.reject(err);
    }
  }

  private take(line: string, stream: OutputStreamName): void {
    if (stream === 'stdout') {
      this.lastOut = line;
      this.action = actionOf(line) ?? this.action;
    } else {
      this.lastErr = line;
    }
    this.run.onLine?.(line, stream);
  }

  /** A file that cannot be read any more (an I/O error) ends the reading, not the script. */
  private readOutput(): void {
    try {
      this.files?.read(this.lines);
    } catch (err) {
      clearInterval(this.outputPoll);
      this.run.onLine?.(`[output no longer readable: ${errorLine(err)}]`, 'stderr');
    }
  }

  /**
   * The whole group gets SIGTERM, then SIGKILL after the grace period, even when the script itself
   * exits at once: a child that ignores SIGTERM must not outlive the apply step.
   */
  private endGroup(why: 'timeout' | 'stop'): void {
    if (this.ending) return;
    this.ending = why;
    signalGroup(this.child.pid, 'SIGTERM');
    this.killTimer = setTimeout(() => {
      signalGroup(this.child.pid, 'SIGKILL');
      this.groupEnded = true;
      this.finish();
    }, KILL_GRACE_MS);
  }

  private failToStart(err: Error): void {
    clearTimeout(this.deadline);
    clearTimeout(this.killTimer);
    this.run.signal?.removeEventListener('abort', this.onAbort);
    clearInterval(this.outputPoll);
    this.files?.close();
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    const through = this.gated ? ' (started through /bin/sh)' : '';
    this.reject(
      new ApplyError(`Cannot run update script ${this.run.script}${through}: ${code}`, { cause: err }),
    );
  }

  private finish(): void {
    if (this.settled || !this.exited) return;
    // Being killed, the script is gone but its group may not be: settle once the group is empty
    // or the grace period is over and SIGKILL went out.
    if (this.ending && !this.groupEnded) {
      if (this.child.pid && groupAlive(this.child.pid)) {
        // Its last members are usually reaped a few ms later: look again soon.
        this.groupPoll ??= setInterval(() => this.finish(), GROUP_POLL_MS);
        return;
      }
      this.groupEnded = true;
    }
    this.settled = true;
    clearInterval(this.groupPoll);
    clearTimeout(this.drain);
    clearInterval(this.outputPoll);
    this.readLastOutput();
    clearTimeout(this.killTimer);
    this.settle(this.exited);
  }

  private readLastOutput(): void {
    try {
      this.files?.drain(this.lines);
    } catch {
      // Already logged by a poll, or nothing more to read.
    } finally {
      this.files?.close();
    }
    for (const splitter of this.lines) splitter.flush();
    // A background process the script left running must not keep the agent alive through the pipes.
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }

  private settle({ code, signal }: { code: number | null; signal: NodeJS.Signals | null }): void {
    const { action, lastOut, lastErr } = this;
    if (this.ending === 'timeout') {
      this.reject(
        new ApplyError(`Update script timed out after ${this.run.timeoutMs / 1000} s and was killed`),
      );
    } else if (this.ending === 'stop') {
      this.reject(new ApplyError('Update script stopped: the agent is stopping'));
    } else if (signal) {
      this.reject(new ApplyError(`Update script was killed by ${signal}${lastErr ? `: ${lastErr}` : ''}`));
    } else {
      this.resolve({ code: code ?? 1, ...(action ? { action } : {}), lastOut, lastErr });
    }
  }
}
