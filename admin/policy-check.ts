/**
 * Checking a distribution policy: parse and explain it, evaluate it against one device (a file or
 * properties), and dry-run it against the devices a product's registry holds ("would match N of M").
 */
import JSON5 from 'json5';
import { parseCheckin } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import { type CompiledPolicy, compilePolicy, type PolicyWarning } from '#core/policy.ts';
import type { DeviceCheckin, DeviceObject } from '#core/types.ts';
import { deviceContext, isSemver, parseVersion } from '#core/version.ts';
import { keys } from '#functions/keys.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation, toAdminError } from './errors.ts';
import { readLocalFile } from './files.ts';
import { checkProduct } from './settings.ts';

/** What one evaluation gives: true/false, or null when it failed (a non-match the cloud counts as PolicyErrors). */
export type PolicyOutcome = boolean | null;

export interface FleetMatch {
  readonly devices: number;
  readonly matched: number;
  /** Devices whose evaluation failed (counted as non-matches). */
  readonly errors: number;
  /** Up to `sampleSize` matching devices. */
  readonly sample: readonly { readonly id: string; readonly version: string }[];
}

/** A device to try the policy on: a file holding its checkin body, or the body itself. */
export type DeviceInput = { readonly file: string } | { readonly properties: unknown };

export interface PolicyCheckRequest {
  /** The policy; '' is the default policy. */
  readonly policy: string;
  /** The update's version (`newVersion` in the policy); null when left out. */
  readonly newVersion?: string;
  /** Dry-run against this product's registry; also the device's product when it names none. */
  readonly product?: string;
  readonly device?: DeviceInput;
}

export interface PolicyCheckResult {
  /** The policy evaluated: the default one for an empty policy. */
  readonly source: string;
  readonly isDefault: boolean;
  readonly terms: number;
  /** How the policy parsed, as an indented tree. */
  readonly explanation: string;
  /** Arithmetic that compiles but can never succeed: worth a warning, not a refusal. */
  readonly warnings: readonly PolicyWarning[];
  readonly newVersion?: string;
  readonly device?: { readonly id: string; readonly version: string; readonly outcome: PolicyOutcome };
  readonly fleet?: FleetMatch & { readonly product: string };
}

/**
 * What compiles but always fails where evaluated (arithmetic on text, say): worth a warning at
 * publish and edit, not a refusal. A policy that does not compile has none; its operation refuses it.
 */
export function policyWarnings(source: string | undefined): readonly PolicyWarning[] {
  if (source === undefined) return [];
  try {
    return compilePolicy(source).warnings;
  } catch {
    return [];
  }
}

/** The policy's outcome for one device, with `newVersion` set when given. */
export function evaluateFor(
  policy: CompiledPolicy,
  device: DeviceCheckin,
  newVersion?: string,
): PolicyOutcome {
  const context = deviceContext(device);
  context.newVersion = newVersion ?? null;
  return policy.evaluate(context);
}

/**
 * Validates device properties as a checkin would be. `id` and `product` may be left out: they
 * default to `device` and `product`. `label` names the device's origin in messages.
 */
export function deviceFromProperties(body: unknown, label: string, product?: string): DeviceCheckin {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError(`${label} must hold a JSON object of device properties`);
  }
  const props = body as Record<string, unknown>;
  if (props.version === undefined) {
    throw new ValidationError(`${label} has no "version": add the device's version, e.g. "version": "1.2.3"`);
  }
  const filled = { id: 'device', product: product ?? 'product', ...props };
  try {
    return parseCheckin(Buffer.from(JSON.stringify(filled)));
  } catch (err) {
    throw new ValidationError(`${label}: ${(err as Error).message}`);
  }
}

/** Reads a device file (JSON or JSON5: a checkin body such as the agent sends), validated as a checkin. */
export function readDeviceFile(file: string, product?: string): DeviceCheckin {
  const text = readLocalFile(file, {
    missing: `Device file not found: ${file}`,
    unreadable: `Cannot read device file ${file}`,
  });
  let body: unknown;
  try {
    body = JSON5.parse(text);
  } catch (err) {
    throw new ValidationError(`Device file ${file} is not JSON: ${(err as Error).message}`);
  }
  return deviceFromProperties(body, `Device file ${file}`, product);
}

function bodyOf(properties: unknown): DeviceObject {
  if (typeof properties !== 'string') return {};
  try {
    const body: unknown = JSON.parse(properties);
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as DeviceObject) : {};
  } catch {
    return {};
  }
}

/** Evaluates the policy against every device of `product` in the registry. */
export async function matchFleet(
  cloud: CloudRecords,
  product: string,
  policy: CompiledPolicy,
  newVersion: string | undefined,
  sampleSize = 10,
): Promise<FleetMatch> {
  const items = await cloud.table.query(keys.devicesOf(product).pk);
  let matched = 0;
  let errors = 0;
  const sample: { id: string; version: string }[] = [];
  for (const item of items) {
    const id = String(item.sk);
    const version = String(item.version);
    // A registry entry with a broken version cannot have come from a valid checkin; count it as an error.
    const outcome = isSemver(version)
      ? evaluateFor(policy, { id, product, version, body: bodyOf(item.properties) }, newVersion)
      : null;
    if (outcome === null) errors++;
    if (outcome !== true) continue;
    matched++;
    if (sample.length < sampleSize) sample.push({ id, version });
  }
  return { devices: items.length, matched, errors, sample };
}

function deviceOf(input: DeviceInput, product: string | undefined): DeviceCheckin {
  if ('file' in input) return readDeviceFile(input.file, product);
  return deviceFromProperties(input.properties, 'Device', product);
}

/**
 * Checks a policy: compiles it (an InvalidPolicyError names the column), then evaluates it for the
 * device and the product's fleet when asked. `openCloud` is called only for a dry run.
 */
export async function checkPolicy(
  request: PolicyCheckRequest,
  openCloud?: () => Promise<CloudRecords>,
): Promise<PolicyCheckResult> {
  let policy: CompiledPolicy;
  let device: DeviceCheckin | undefined;
  const { product, newVersion } = request;
  try {
    policy = compilePolicy(request.policy);
    if (newVersion !== undefined) parseVersion(newVersion, '--new-version');
    device = request.device === undefined ? undefined : deviceOf(request.device, product);
    if (product !== undefined && openCloud) checkProduct(product);
  } catch (err) {
    throw toAdminError(err);
  }
  const result = {
    source: policy.source,
    isDefault: request.policy.trim() === '',
    terms: policy.terms,
    explanation: policy.explain(),
    warnings: policy.warnings,
    ...(newVersion !== undefined ? { newVersion } : {}),
    ...(device
      ? {
          device: {
            id: device.id,
            version: device.version,
            outcome: evaluateFor(policy, device, newVersion),
          },
        }
      : {}),
  };
  if (product === undefined || !openCloud) return result;
  const cloud = await openCloud();
  const fleet = await adminOperation(cloud.store, () => matchFleet(cloud, product, policy, newVersion));
  return { ...result, fleet: { product, ...fleet } };
}
