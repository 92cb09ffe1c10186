/**
 * The agent's persisted record (format version STATE_FORMAT) and the check of its whole shape: a
 * record that fails it is set aside rather than misread (StateStore.load in state.ts).
 */
import type { ReportStatus } from '#core/types.ts';
import type { ProcessIdentity } from './proc.ts';

/** Bumped when the record changes shape; a record of another format is set aside, not misread. */
export const STATE_FORMAT = 1;

export const STATES = [
  'idle',
  'checking',
  'downloading',
  'verifying',
  /** Verified, waiting for the `update.apply` window. */
  'waiting',
  'applying',
  'reporting',
  'pending-confirm',
] as const;
export type AgentStateName = (typeof STATES)[number];

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

type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
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
    (s.state !== 'reporting' || s.report !== undefined) &&
    (s.state !== 'waiting' || (s.offer !== undefined && s.download !== undefined))
  );
}
