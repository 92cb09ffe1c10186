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
 *   verifying ─rejected→ reporting;  applying ─apply-failed→ reporting;  reporting ─report-failed→ reporting
 *   after a restart: checking | downloading | verifying ─interrupted→ idle, applying ─interrupted→ pending-confirm
 *     (once an update script the previous process left running is over); stop() during the script
 *     leaves `applying` on disk for that recovery
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ReportStatus } from '#core/types.ts';
import { StateDirError, StateLockedError } from './errors.ts';
import { identify, isSameProcess, type ProcessIdentity, writeAllSync } from './proc.ts';

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
  /**
   * Consecutive download cycles of this update that failed without adding a byte. Checkins do not
   * reset it (only progress does); it drives the retry delay and, at MAX_DOWNLOAD_CYCLES, fails the update.
   */
  readonly failures?: number;
}

/** The update script's process, persisted so a restart can wait for (or end) a script left running. */
export interface ScriptRecord extends ProcessIdentity {
  /** Epoch ms when the script started: its applyTimeout runs from there. */
  readonly startedAt: number;
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
  /** The running update script; its PID is its process group id. */
  readonly script?: ScriptRecord;
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

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optional =
  <T>(check: (v: unknown) => v is T) =>
  (v: unknown): boolean =>
    v === undefined || check(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
/** A plain file name: the download is opened inside the downloads directory, never elsewhere. */
const isFileName = (v: unknown): v is string =>
  typeof v === 'string' && /^[A-Za-z0-9._-]{1,200}$/.test(v) && v !== '.' && v !== '..';
const REPORT_STATUSES: readonly string[] = ['downloaded', 'verified', 'applied', 'failed', 'rejected'];

function isOffer(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.update) &&
    isString(v.version) &&
    isString(v.url) &&
    isString(v.checksum) &&
    isCount(v.size) &&
    optional(isString)(v.signature)
  );
}

function isDownloadRecord(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.update) &&
    isString(v.checksum) &&
    isCount(v.size) &&
    isFileName(v.file) &&
    isCount(v.offset) &&
    optional(isCount)(v.failures)
  );
}

function isScriptRecord(v: unknown): boolean {
  return (
    isObject(v) &&
    isCount(v.pid) &&
    v.pid > 0 &&
    isTime(v.startedAt) &&
    optional(isString)(v.boot) &&
    optional(isString)(v.start)
  );
}

function isApplyRecord(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.update) &&
    isString(v.version) &&
    isString(v.from) &&
    optional(isBoolean)(v.finished) &&
    optional(isBoolean)(v.exitRequested) &&
    (v.script === undefined || isScriptRecord(v.script))
  );
}

function isReportRecord(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.update) &&
    isBoolean(v.success) &&
    isString(v.status) &&
    REPORT_STATUSES.includes(v.status) &&
    optional(isString)(v.error) &&
    isString(v.version)
  );
}

function isFailureRecord(v: unknown): boolean {
  return isObject(v) && isCount(v.failures) && isTime(v.retryAt);
}

/**
 * The whole record, nested records included: a field of the wrong shape (`"apply": null`) would
 * otherwise surface as a crash in the middle of a cycle, on every start.
 */
export function isPersistedState(v: unknown): v is PersistedState {
  if (!isObject(v)) return false;
  const s = v;
  return (
    s.format === STATE_FORMAT &&
    typeof s.state === 'string' &&
    (STATES as readonly string[]).includes(s.state) &&
    isCount(s.checkinFailures) &&
    optional(isTime)(s.lastCheckin) &&
    optional(isTime)(s.nextCheckin) &&
    (s.offer === undefined || isOffer(s.offer)) &&
    (s.download === undefined || isDownloadRecord(s.download)) &&
    (s.apply === undefined || isApplyRecord(s.apply)) &&
    (s.report === undefined || isReportRecord(s.report)) &&
    isObject(s.failed) &&
    Object.values(s.failed).every(isFailureRecord) &&
    // The states that act on a record need it.
    (!['applying', 'pending-confirm'].includes(s.state) || s.apply !== undefined) &&
    (s.state !== 'reporting' || s.report !== undefined)
  );
}
