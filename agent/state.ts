/**
 * The agent's persisted state machine (DESIGN §7, STYLE habit 8).
 *
 * One transition table says which event moves which state where; the agent writes the whole record
 * atomically (temp file + fsync + rename + fsync of the directory) before each side effect, so a
 * process killed at any instant restarts from a state that says what was under way:
 *
 *   idle ─checkin→ checking ─offer→ downloading ─downloaded→ verifying ─verified→ applying
 *   applying ─applied→ pending-confirm ─confirmed→ reporting ─reported→ idle
 *   checking ─no-update | skip | checkin-failed→ idle;  checking ─refuse→ reporting
 *   downloading ─download-failed→ idle (partial file kept for resume);  ─download-refused→ reporting
 *     (refused outright, or failed MAX_DOWNLOAD_CYCLES times in a row)
 *   verifying ─deferred→ waiting (outside the update.apply window) ─window-open→ verifying
 *   verifying ─rejected→ reporting;  applying ─apply-failed→ reporting;  reporting ─report-failed→ reporting
 *   after a restart: checking | downloading | verifying ─interrupted→ idle, applying ─interrupted→ pending-confirm
 *     (once an update script the previous process left running is over); stop() during the script
 *     leaves `applying` on disk for that recovery
 *
 * Each state's handler is in cycle.ts; the record's shape is in state-record.ts.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { StateDirError, StateLockedError } from './errors.ts';
import { identify, isSameProcess, type ProcessIdentity, writeAllSync } from './proc.ts';
import {
  type AgentStateName,
  initialState,
  isObject,
  isPersistedState,
  type PersistedState,
} from './state-record.ts';

export {
  type AgentStateName,
  type ApplyRecord,
  type DownloadRecord,
  type FailureRecord,
  initialState,
  isPersistedState,
  type Offer,
  type PersistedState,
  type ReportRecord,
  type ScriptRecord,
  STATE_FORMAT,
  STATES,
} from './state-record.ts';

export type AgentEvent =
  | 'checkin'
  | 'no-update'
  | 'checkin-failed'
  | 'skip'
  | 'offer'
  | 'refuse'
  | 'downloaded'
  | 'download-failed'
  | 'download-refused'
  | 'verified'
  | 'deferred'
  | 'window-open'
  | 'rejected'
  | 'applied'
  | 'apply-failed'
  | 'confirmed'
  | 'reported'
  | 'report-failed'
  | 'interrupted';

/** The transition table: the only place that decides where an event leads. */
export const TRANSITIONS: Readonly<
  Record<AgentStateName, Readonly<Partial<Record<AgentEvent, AgentStateName>>>>
> = {
  idle: { checkin: 'checking' },
  checking: {
    'no-update': 'idle',
    'checkin-failed': 'idle',
    skip: 'idle',
    offer: 'downloading',
    refuse: 'reporting',
    interrupted: 'idle',
  },
  downloading: {
    downloaded: 'verifying',
    'download-failed': 'idle',
    'download-refused': 'reporting',
    interrupted: 'idle',
  },
  verifying: { verified: 'applying', deferred: 'waiting', rejected: 'reporting', interrupted: 'idle' },
  // Verified again from the file when the window opens: it waited on disk, perhaps for hours.
  waiting: { 'window-open': 'verifying' },
  applying: { applied: 'pending-confirm', 'apply-failed': 'reporting', interrupted: 'pending-confirm' },
  'pending-confirm': { confirmed: 'reporting' },
  reporting: { reported: 'idle', 'report-failed': 'reporting' },
};

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  constructor(
    readonly from: AgentStateName,
    readonly event: AgentEvent,
  ) {
    super(`Invalid agent transition: event "${event}" in state "${from}"`);
  }
}

export function nextState(from: AgentStateName, event: AgentEvent): AgentStateName {
  const to = TRANSITIONS[from][event];
  if (!to) throw new InvalidTransitionError(from, event);
  return to;
}

const STATE_FILE = 'state.json';
const LOCK_FILE = 'agent.pid';

/** Reads and writes the state record of one state directory. */
export class StateStore {
  readonly file: string;
  /** Set when load() found an unreadable record and moved it aside. */
  discarded?: string;

  constructor(readonly dir: string) {
    this.file = join(dir, STATE_FILE);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw stateDirError(dir, err);
    }
  }

  load(): PersistedState {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return initialState();
      throw stateDirError(this.dir, err, STATE_FILE);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (isPersistedState(value)) return value;
    // A record this agent cannot read (other format, damaged disk) must not stop updates forever:
    // keep it for inspection and start over.
    this.discarded = `${this.file}.bad-${Date.now()}`;
    renameSync(this.file, this.discarded);
    return initialState();
  }

  save(state: PersistedState): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeAllSync(fd, JSON.stringify(state));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    // The rename is durable only once the directory entry is.
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  /**
   * Claims the directory for this process: two agents on one state would undo each other's work.
   * A lock left by a dead process (SIGKILL, power loss) is taken over, and so is one whose PID now
   * names another process: the lock records the boot id and the process start time with the PID.
   */
  lock(): () => void {
    const path = join(this.dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw stateDirError(this.dir, err, LOCK_FILE);
        const holder = parseLock(readQuiet(path));
        if (holder && holder.pid !== process.pid && isSameProcess(holder)) {
          throw new StateLockedError(`State directory ${this.dir} is in use by agent process ${holder.pid}`);
        }
        unlinkQuiet(path);
        continue;
      }
      try {
        writeAllSync(fd, `${JSON.stringify(identify(process.pid))}\n`);
      } catch (err) {
        unlinkQuiet(path);
        throw stateDirError(this.dir, err, LOCK_FILE);
      } finally {
        closeSync(fd);
      }
      return () => unlinkQuiet(path);
    }
    throw new StateLockedError(`Cannot lock state directory ${this.dir}`);
  }
}

/** The lock file's holder: `{"pid":…,"boot":…,"start":…}`, or a bare PID as older agents wrote it. */
export function parseLock(text: string): ProcessIdentity | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return validPid(Number(trimmed)) ? { pid: Number(trimmed) } : undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!isObject(value) || !validPid(value.pid)) return undefined;
  return {
    pid: value.pid,
    ...(typeof value.boot === 'string' ? { boot: value.boot } : {}),
    ...(typeof value.start === 'string' ? { start: value.start } : {}),
  };
}

function validPid(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

const PROBLEMS: Readonly<Record<string, string>> = {
  EEXIST: 'exists and is not a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};

/** A filesystem error on the state directory as a one-line StateDirError; other errors pass through. */
export function stateDirError(dir: string, err: unknown, entry?: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('E')) return err as Error;
  const problem = PROBLEMS[code] ?? code;
  return new StateDirError(dir, entry ? `${entry}: ${problem} (${code})` : `${problem} (${code})`, {
    cause: err,
  });
}

function readQuiet(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function unlinkQuiet(path: string): void {
  try {
    // Sync so it also works from an 'exit' handler.
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
