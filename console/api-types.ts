/**
 * What the console's API sends and receives, shared by the server (console/routes.ts) and the
 * page's client (console/ui/api.ts). Results of admin operations are admin/'s own types, re-exported
 * here and never re-declared (STYLE habit 13); this file only adds the shapes the API itself owns.
 */
import type { PhaseStatus, PublishOptions, UpdateRecord } from '#admin/index.ts';

export type {
  CreatedToken,
  DaySeen,
  DeviceDetail,
  DevicePage,
  DeviceReportEntry,
  DeviceSummary,
  DeviceUpdateHistory,
  FailureReason,
  FleetMatch,
  GeneratedKeys,
  GrantedDevice,
  PhaseStatus,
  PolicyCheckResult,
  ProductStats,
  RetryResult,
  RolloutResult,
  SeriesPoint,
  TokenInfo,
  UpdateChanges,
  UpdateCounters,
  UpdateDevicePage,
  UpdateFailures,
  UpdateRecord,
  UpdateStats,
} from '#admin/index.ts';

/** GET /api/session */
export interface ApiSession {
  /** The clouds this console manages (`local` for npm start's), the first shown at start. */
  readonly clouds: readonly string[];
  readonly defaultProduct: string;
}

/** Every failure: one line, plus the column for an invalid policy. */
export interface ApiError {
  readonly error: string;
  readonly column?: number;
}

/**
 * POST /api/products/:product/updates?settings=JSON: the publish options (the product is in the
 * path), the uploaded file's name, and the signing key as a path on the console's machine (DESIGN
 * §11: the key itself never travels through the page). The body is the image.
 */
export type PublishSettings = Omit<PublishOptions, 'product' | 'signKeyPem'> & {
  readonly name: string;
  readonly signKey?: string;
};

/** An update as list and show answer it: a phased one with where its phases stand now. */
export type UpdateView = UpdateRecord & { readonly phaseStatus?: PhaseStatus };
