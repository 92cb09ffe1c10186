/**
 * Admin operations of a device cloud (DESIGN §6): the one module the builder CLI and the web
 * console call. Each operation takes the cloud's parts (admin/cloud.ts), validates its input, and
 * returns a typed result or fails with an AdminError (admin/errors.ts) that carries a one-line
 * message and the HTTP status the console answers with.
 *
 *   updates      publish (file or stream), publish to several clouds, list, show, enable, disable,
 *                edit, delete
 *   stats        devices per version and seen per day, update counters, hourly series, daily metrics
 *   devices      the device list (paginated, filtered by version and policy), one device's history
 *   failures     an update's failures grouped by reason, with counts and the latest devices
 *   update devices  the devices granted an update, with their outcomes (paginated)
 *   tokens       create (secret shown once), list, revoke
 *   keys         generate a signing key pair, read a signing key
 *   policy       parse, explain, evaluate for a device, dry-run against a product's registry
 *   rollout      pause, resume, advance a phase, retry the failed devices; a phased update's status
 */

export type { PhaseStatus } from '#core/phases.ts';
export type { PolicyWarning } from '#core/policy.ts';
export type { UpdateCounters, UpdateRecord } from '#core/types.ts';
/** How a builder's tool finds other AWS endpoints: the one reading of AWS_ENDPOINT_URL*. */
export { awsEndpointsFromEnv } from '#functions/config.ts';
export type {
  CloudParts,
  CloudRecords,
  ImageStorage,
  NamedCloud,
  UploadOptions,
} from './cloud.ts';
export {
  type DeviceDetail,
  type DevicePage,
  type DeviceQuery,
  type DeviceReportEntry,
  type DeviceSummary,
  type DeviceUpdateHistory,
  type LastOutcome,
  listDevices,
  showDevice,
} from './devices.ts';
export {
  AdminError,
  CloudAccessError,
  ConflictError,
  ImageStoreError,
  InvalidInputError,
  InvalidPolicyError,
  NotFoundError,
  PublishError,
  type StoreDescription,
  StoreUnreachableError,
  toAdminError,
} from './errors.ts';
export { type FailureReason, type UpdateFailures, updateFailures } from './failures.ts';
export type { ImageFile, ImageSource, ImageStream } from './image-source.ts';
export { type GeneratedKeys, generateKeys, readSigningKey } from './keys.ts';
export {
  checkPolicy,
  type DeviceInput,
  FLEET_SCAN_DEVICES,
  FLEET_SCAN_MS,
  type FleetMatch,
  type FleetScanOptions,
  type PolicyCheckRequest,
  type PolicyCheckResult,
  type PolicyOutcome,
  policyWarnings,
} from './policy-check.ts';
export {
  type PublishHooks,
  type PublishInput,
  type PublishOptions,
  preparePublish,
  publish,
} from './publish.ts';
export { type CloudPublishEvents, type CloudRecord, publishToClouds } from './publish-clouds.ts';
export {
  type AdvanceOptions,
  advanceRollout,
  pauseRollout,
  phaseStatusOf,
  type RetryResult,
  type RolloutOptions,
  type RolloutResult,
  resumeRollout,
  retryFailed,
} from './rollout.ts';
export type { UpdateChanges, UpdateSettings } from './settings.ts';
export {
  type BackfillResult,
  backfillDeviceCounts,
  type DayMetrics,
  type DaySeen,
  type ProductStats,
  productStats,
  type SeriesPoint,
  type StatsOptions,
  type UpdateStats,
  type VersionCount,
} from './stats.ts';
export {
  type CreatedToken,
  checkTokenId,
  checkTokenScope,
  createToken,
  listTokens,
  revokeToken,
  type TokenInfo,
  type TokenScope,
} from './tokens.ts';
export {
  type GrantedDevice,
  type UpdateDevicePage,
  type UpdateDeviceQuery,
  updateDevices,
} from './update-devices.ts';
export {
  deleteUpdate,
  disableUpdate,
  editUpdate,
  enableUpdate,
  listUpdates,
  showUpdate,
  type UpdateSelector,
} from './updates.ts';
