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
 *   verifying ─rejected→ reporting;  applying ─apply-failed→ reporting;  reporting ─report-failed→ reporting
 *   after a restart: checking | downloading | verifying ─interrupted→ idle, applying ─interrupted→ pending-confirm
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ReportStatus } from '#core/types.ts';
import { StateLockedError } from './errors.ts';

/** Bumped when the record changes shape; a record of another format is set aside, not misread. */
export const STATE_FORMAT = 1;

export const STATES = [
  'idle',
  'checking',
  'downloading',
  'verifying',
  'applying',
  'reporting',
  'pending-confirm',
] as const;
export type AgentStateName = (typeof STATES)[number];

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
  verifying: { verified: 'applying', rejected: 'reporting', interrupted: 'idle' },
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

/** What the device cloud offered (DESIGN §2), validated. */
export interface Offer {
  readonly update: string;
  readonly version: string;
  readonly url: string;
  readonly checksum: string;
  readonly size: number;
  readonly signature?: string;
}

/** A partial or complete download in the state directory. */
export interface DownloadRecord {
  readonly update: string;
  readonly checksum: string;
  readonly size: number;
  /** File name inside the downloads directory. */
  readonly file: string;
  /** Bytes known to be on disk (fsynced); a restart truncates the file to this and re-hashes it. */
  readonly offset: number;
}

/** The pending record written before applying: what to confirm on the next start. */
export interface ApplyRecord {
  readonly update: string;
  readonly version: string;
  /** Version running before the apply. */
  readonly from: string;
  /** Set once the apply step finished with success; absent means it was interrupted. */
  readonly finished?: boolean;
  /** The update script asked the agent to exit; the next start confirms. */
  readonly exitRequested?: boolean;
}

export interface ReportRecord {
  readonly update: string;
  readonly success: boolean;
  readonly status: ReportStatus;
  readonly error?: string;
  /** Version running when reporting. */
  readonly version: string;
}

/** Back-off of one update id that failed. */
export interface FailureRecord {
  readonly failures: number;
  /** Epoch ms before which the id is not tried again. */
  readonly retryAt: number;
}

export interface PersistedState {
  readonly format: typeof STATE_FORMAT;
  readonly state: AgentStateName;
  /** Epoch ms of the last checkin that got an answer. */
  readonly lastCheckin?: number;
  /** Epoch ms when the schedule runs the next checkin. */
  readonly nextCheckin?: number;
  /** Consecutive failed checkins, for the backoff. */
  readonly checkinFailures: number;
  readonly offer?: Offer;
  readonly download?: DownloadRecord;
  readonly apply?: ApplyRecord;
  readonly report?: ReportRecord;
  readonly failed: Readonly<Record<string, FailureRecord>>;
}

export function initialState(): PersistedState {
  return { format: STATE_FORMAT, state: 'idle', checkinFailures: 0, failed: {} };
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
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  load(): PersistedState {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return initialState();
      throw err;
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
      writeSync(fd, JSON.stringify(state));
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
   * A lock left by a dead process (SIGKILL, power loss) is taken over.
   */
  lock(): () => void {
    const path = join(this.dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return () => unlinkQuiet(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(readQuiet(path));
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
          throw new StateLockedError(`State directory ${this.dir} is in use by agent process ${pid}`);
        }
        unlinkQuiet(path);
      }
    }
    throw new StateLockedError(`Cannot lock state directory ${this.dir}`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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

function isPersistedState(v: unknown): v is PersistedState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    s.format === STATE_FORMAT &&
    typeof s.state === 'string' &&
    (STATES as readonly string[]).includes(s.state) &&
    typeof s.checkinFailures === 'number' &&
    typeof s.failed === 'object' &&
    s.failed !== null &&
    // The states that act on a record need it.
    (!['applying', 'pending-confirm'].includes(s.state) || typeof s.apply === 'object') &&
    (s.state !== 'reporting' || typeof s.report === 'object')
  );
}
