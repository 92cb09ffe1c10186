/** The agent's public types: options, the `device:update` event and its answer, cycle results. */

import type { AgentConfig } from './config.ts';
import type { DownloadRetry } from './download.ts';
import type { Logger } from './log.ts';
import type { UpdateBackoff } from './schedule.ts';
import type { ApplyAction } from './script-output.ts';
import type { AgentEvent, AgentStateName, ReportRecord } from './state.ts';

export interface DeviceUpdateEvent {
  /** Absolute path of the verified image. */
  readonly path: string;
  readonly version: string;
  /** Update id, as reported back to the cloud. */
  readonly update: string;
  readonly checksum: string;
  readonly size: number;
}

export interface ApplyResult {
  readonly applied: boolean;
  /** Why it failed; becomes the report's `error`. */
  readonly error?: string;
  readonly action?: ApplyAction;
}

export type UpdateListener = (
  event: DeviceUpdateEvent,
) => ApplyResult | undefined | Promise<ApplyResult | undefined>;

export interface StateChange {
  readonly from: AgentStateName;
  readonly to: AgentStateName;
  readonly event: AgentEvent;
}

export interface DownloadProgress {
  readonly update: string;
  readonly received: number;
  readonly size: number;
}

export type CycleOutcome =
  /** services.update or update.enable is false. */
  | 'disabled'
  | 'no-update'
  | 'applied'
  /** Download refused, apply failed or not confirmed; reported as failed. */
  | 'failed'
  /** Signature, version rule or checksum refused the update; reported as rejected. */
  | 'rejected'
  /** The offered update is held back after repeated failures. */
  | 'skipped'
  /** The update is verified and waits, on disk, for the `update.apply` window (at `applyAt`). */
  | 'waiting'
  /** The update script asked the agent to exit; the next start confirms. */
  | 'exit'
  /** Checkin, download or report did not get through; retried on the schedule. */
  | 'error';

export interface CycleResult {
  readonly outcome: CycleOutcome;
  readonly update?: string;
  readonly version?: string;
  readonly error?: string;
  /** Outcome `waiting`: epoch ms when the `update.apply` window opens. */
  readonly applyAt?: number;
  /** Reports made in this cycle, the confirmation of an earlier update included. */
  readonly reports: readonly ReportRecord[];
}

export interface AgentOptions {
  readonly config: AgentConfig;
  /** Directory for the state record and downloads; created 0700 if missing. */
  readonly stateDir: string;
  readonly log?: Logger;
  /** Clock and randomness, replaceable in tests. */
  readonly now?: () => number;
  readonly random?: () => number;
  /** The running version, to confirm an update. Default: `scripts.version`, else ioto.json5's `version`. */
  readonly runningVersion?: () => string | Promise<string>;
  readonly downloadRetry?: Partial<DownloadRetry>;
  readonly updateBackoff?: UpdateBackoff;
  /** Timeout of checkin and report requests (default 30 s). */
  readonly requestTimeoutMs?: number;
}
