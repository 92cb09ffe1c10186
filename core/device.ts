/**
 * Validation of the device-facing request bodies (DESIGN §2). Runs on every checkin, so the body is
 * decoded and parsed once and walked once, with regular expressions compiled at load.
 *
 * Rules, checkin and report alike: at most 16 KiB, valid UTF-8 (a leading BOM is dropped), a JSON object.
 * Checkin custom values:
 * - string of at most 1024 characters, counted as JavaScript string length (UTF-16 code units), which
 *   bounds the stored size at ≤ 3 KiB of UTF-8 and costs nothing to measure;
 * - finite number (JSON.parse turns `1e999` into Infinity), boolean, null;
 * - object nested at most 4 levels: in `{"a":{"b":{"c":{"d":{"e":1}}}}}` the object under `d` is the 4th
 *   level and the deepest allowed;
 * - no arrays: DESIGN lists none, and the policy language has no way to index them.
 * Keys match `[A-Za-z_$][A-Za-z0-9_$-]*` at every depth (the top-level names included) and are never
 * `__proto__`, `constructor` or `prototype`.
 * Error messages name the field and the fix, and echo at most 60 characters of client input.
 */

import JSON5 from 'json5';
import { PayloadTooLargeError, ValidationError } from './errors.ts';
import type { DeviceCheckin, DeviceObject, DeviceReport, ReportStatus } from './types.ts';
import { isSemver, quoteInput } from './version.ts';

export const MAX_BODY_BYTES = 16 * 1024;
/** Longest custom string value and report `error`, in UTF-16 code units. */
export const MAX_STRING_LENGTH = 1024;
/** Deepest nesting of custom objects; the body itself is level 0. */
export const MAX_DEPTH = 4;

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PRODUCT = /^[A-Za-z0-9._:-]{1,64}$/;
const KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const STATUSES: ReadonlySet<string> = new Set<ReportStatus>([
  'downloaded',
  'verified',
  'applied',
  'failed',
  'rejected',
]);
const SUCCESS_STATUSES: ReadonlySet<string> = new Set<ReportStatus>(['downloaded', 'verified', 'applied']);

export const ID_RULE = 'use 1–128 characters of A-Z a-z 0-9 . _ : -';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isValidId(s: string): boolean {
  return typeof s === 'string' && ID.test(s);
}

export function isValidProduct(s: string): boolean {
  // Products name S3 prefixes (images/<product>/…): "." and ".." would be normalised away by URL parsers.
  return typeof s === 'string' && PRODUCT.test(s) && s !== '.' && s !== '..';
}

type JsonObject = Record<string, unknown>;

function decodeObject(raw: Uint8Array): JsonObject {
  if (raw.byteLength > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(
      `Request body too large: ${raw.byteLength} bytes; the limit is ${MAX_BODY_BYTES} bytes (16 KiB)`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch (cause) {
    throw new ValidationError('Invalid body: not valid UTF-8; send JSON encoded as UTF-8', { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Existing clients send looser JSON: the EmbedThis updater 1.1 and the first updater.sh end
    // bodies with `,}`, and Ioto's own tools post JSON5 (`{id: 'x'}`). JSON5 is a superset of JSON
    // (json5 >= 2.2.2 defines `__proto__` keys as own properties, so the reserved-key check below
    // still sees them); strict JSON stays the fast path.
    try {
      value = JSON5.parse(text);
    } catch (cause) {
      throw new ValidationError('Invalid body: not JSON; send a JSON object', { cause });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('Invalid body: send a JSON object, not an array or a bare value');
  }
  return value as JsonObject;
}

function fieldName(path: string, key: string): string {
  return quoteInput(path === '' ? key : `${path}.${key}`);
}

function checkKey(path: string, key: string): void {
  if (RESERVED_KEYS.has(key)) {
    throw new ValidationError(`Invalid property name ${fieldName(path, key)}: reserved, use another name`);
  }
  if (!KEY.test(key)) {
    throw new ValidationError(
      `Invalid property name ${fieldName(path, key)}: use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $`,
    );
  }
}

/** Checks the keys and values of `obj`, an object at nesting level `depth` whose dotted name is `path`. */
function checkObject(obj: JsonObject, path: string, depth: number): void {
  for (const key of Object.keys(obj)) {
    checkKey(path, key);
    const value = obj[key];
    switch (typeof value) {
      case 'string':
        if (value.length > MAX_STRING_LENGTH) {
          throw new ValidationError(
            `Invalid ${fieldName(path, key)}: strings are limited to ${MAX_STRING_LENGTH} characters`,
          );
        }
        break;
      case 'number':
        if (!Number.isFinite(value)) {
          throw new ValidationError(`Invalid ${fieldName(path, key)}: numbers must be finite`);
        }
        break;
      case 'boolean':
        break;
      case 'object':
        if (value === null) break;
        if (Array.isArray(value)) {
          throw new ValidationError(
            `Invalid ${fieldName(path, key)}: arrays are not supported; send a string or a nested object`,
          );
        }
        if (depth >= MAX_DEPTH) {
          throw new ValidationError(
            `Invalid ${fieldName(path, key)}: objects nest at most ${MAX_DEPTH} levels deep; flatten it`,
          );
        }
        checkObject(value as JsonObject, path === '' ? key : `${path}.${key}`, depth + 1);
        break;
      default:
        // JSON.parse yields nothing else; kept so a future change of decoder cannot slip values through.
        throw new ValidationError(`Invalid ${fieldName(path, key)}: unsupported value`);
    }
  }
}

/** Raw request body → validated checkin. Throws PayloadTooLargeError (> 16 KiB) or ValidationError. */
export function parseCheckin(raw: Uint8Array): DeviceCheckin {
  const body = decodeObject(raw);
  const { id, product, version, iotoVersion } = body;
  if (typeof id !== 'string' || !ID.test(id)) throw new ValidationError(`Invalid "id": ${ID_RULE}`);
  if (typeof product !== 'string' || !isValidProduct(product)) {
    throw new ValidationError('Invalid "product": use 1–64 characters of A-Z a-z 0-9 . _ : -, not only dots');
  }
  if (typeof version !== 'string') {
    throw new ValidationError(
      'Invalid "version": send the running version as a SemVer 2.0 string, e.g. "1.2.3"',
    );
  }
  if (!isSemver(version)) throw new ValidationError(`Invalid version ${quoteInput(version)}: not SemVer 2.0`);
  if (iotoVersion !== undefined && typeof iotoVersion !== 'string') {
    throw new ValidationError('Invalid "iotoVersion": send a string, e.g. "2.4.0"');
  }
  checkObject(body, '', 0);
  return { id, product, version, body: body as DeviceObject };
}

function parseSuccess(value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ValidationError('Invalid "success": use true or false');
}

/**
 * Raw report body → validated report. Properties other than those of DESIGN §2 are ignored, and an
 * optional property sent as null counts as absent. `status` must agree with `success`: downloaded,
 * verified and applied are successes; failed and rejected are not.
 */
export function parseReport(raw: Uint8Array): DeviceReport {
  const body = decodeObject(raw);
  const { id, update, status, error, version } = body;
  if (typeof id !== 'string' || !ID.test(id)) throw new ValidationError(`Invalid "id": ${ID_RULE}`);
  if (typeof update !== 'string' || !ID.test(update)) {
    throw new ValidationError(
      `Invalid "update": send the update id from the checkin answer (1–128 characters of A-Z a-z 0-9 . _ : -)`,
    );
  }
  const success = parseSuccess(body.success);
  let reportStatus: ReportStatus;
  if (status === undefined || status === null) {
    reportStatus = success ? 'applied' : 'failed';
  } else if (typeof status === 'string' && STATUSES.has(status)) {
    reportStatus = status as ReportStatus;
    if (SUCCESS_STATUSES.has(status) !== success) {
      throw new ValidationError(
        `Invalid "status": "${status}" contradicts "success": ${success}; failed and rejected go with false, the others with true`,
      );
    }
  } else {
    throw new ValidationError('Invalid "status": use one of downloaded, verified, applied, failed, rejected');
  }
  const report: { -readonly [K in keyof DeviceReport]: DeviceReport[K] } = {
    id,
    update,
    success,
    status: reportStatus,
  };
  if (error !== undefined && error !== null) {
    if (typeof error !== 'string' || error.length > MAX_STRING_LENGTH) {
      throw new ValidationError(`Invalid "error": send a string of at most ${MAX_STRING_LENGTH} characters`);
    }
    report.error = error;
  }
  if (version !== undefined && version !== null) {
    if (typeof version !== 'string') {
      throw new ValidationError('Invalid "version": send a SemVer 2.0 string, e.g. "1.2.3"');
    }
    if (!isSemver(version))
      throw new ValidationError(`Invalid version ${quoteInput(version)}: not SemVer 2.0`);
    report.version = version;
  }
  return report;
}
