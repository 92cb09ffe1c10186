/**
 * Domain types shared by the device cloud, the builder CLI and the agent.
 * Pure data: nothing here performs I/O or imports AWS.
 */

/** A JSON value a device may send as a custom property (DESIGN §2). */
export type DeviceValue = string | number | boolean | null | DeviceObject;
export interface DeviceObject {
  [key: string]: DeviceValue;
}

/** A validated checkin body. `body` holds every property the device sent, including id/product/version. */
export interface DeviceCheckin {
  readonly id: string;
  readonly product: string;
  readonly version: string;
  readonly body: DeviceObject;
}

export type ReportStatus = 'downloaded' | 'verified' | 'applied' | 'failed' | 'rejected';

/** A validated update report (POST /tok/provision/updateReport). */
export interface DeviceReport {
  readonly id: string;
  readonly update: string;
  readonly success: boolean;
  /** Defaults to `applied` when success, `failed` otherwise. */
  readonly status: ReportStatus;
  readonly error?: string;
  readonly version?: string;
}

/** Rollout limits of one update (DESIGN §4). Absent means unlimited. */
export interface RolloutLimits {
  /** 0.01–100 in steps of 0.01 (checkPercentage), of devices, deterministic per device. */
  readonly percentage?: number;
  /** Maximum number of devices granted. */
  readonly limit?: number;
  /** Grants per `period` seconds. Both or neither. */
  readonly rate?: number;
  readonly period?: number;
}

export interface AbortSettings {
  /** Failure percentage (0–100] that pauses the update once `abortMin` reports arrived. */
  readonly abortThreshold?: number;
  readonly abortMin?: number;
}

/** Rollout phases (DESIGN §12), in their canonical spelling (core/phases.ts parses them). */
export interface PhaseSettings {
  /** e.g. "1%,10%@1d,100%@2d"; excludes `percentage`. */
  readonly phases?: string;
  /** e.g. "success>=95%,min=20": a phase advances only while it holds. */
  readonly gate?: string;
  /** ISO time phase 0 begins; default the publication time. */
  readonly startAt?: string;
}

export interface UpdateCounters {
  /** Devices granted (UpdateStarted). */
  readonly started: number;
  readonly success: number;
  readonly failure: number;
  readonly deferred: number;
}

/** A published update as stored in the device cloud. */
export interface UpdateRecord extends RolloutLimits, AbortSettings, PhaseSettings {
  readonly id: string;
  readonly product: string;
  readonly version: string;
  /** Distribution policy source; '' means `semver(version, "<", newVersion)`. */
  readonly policy: string;
  readonly description: string;
  readonly enabled: boolean;
  readonly paused: boolean;
  readonly pauseReason?: string;
  readonly allowDowngrade: boolean;
  /** S3 object key of the image: images/<product>/<version>/<file>. */
  readonly key: string;
  /** sha256 of the image, lowercase hex. */
  readonly checksum: string;
  readonly size: number;
  /** Base64 Ed25519 signature over the canonical manifest (core/manifest.ts). */
  readonly signature?: string;
  /** ISO 8601 time of publication. */
  readonly created: string;
  /** The phase recorded at checkin (index into `phases`); it only moves forward. */
  readonly phase?: number;
  /** Times `rollout retry-failed` offered the update again to devices whose last report failed. */
  readonly retry?: number;
  readonly counters: UpdateCounters;
}
