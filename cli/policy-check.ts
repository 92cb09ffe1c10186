/**
 * `updraft policy check`: parse and explain a policy, evaluate it against one device file, and dry-run
 * it against the devices a product's registry holds ("would match N of M devices").
 */
import { readFileSync } from 'node:fs';
import JSON5 from 'json5';
import { parseCheckin } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import { type CompiledPolicy, compilePolicy } from '#core/policy.ts';
import type { DeviceCheckin, DeviceObject } from '#core/types.ts';
import { deviceContext, isSemver, parseVersion } from '#core/version.ts';
import type { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';

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

/** Compiles `source`; throws the PolicyError (reason, column, excerpt) when it does not. */
export function checkPolicy(source: string): CompiledPolicy {
  return compilePolicy(source);
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
 * Reads a device file (JSON or JSON5: a checkin body such as the agent sends) and validates it as a
 * checkin would be. `id` and `product` may be left out: they default to `device` and `product`.
 */
export function readDeviceFile(file: string, product?: string): DeviceCheckin {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ValidationError(
      code === 'ENOENT'
        ? `Device file not found: ${file}`
        : `Cannot read device file ${file}: ${(err as Error).message}`,
    );
  }
  let body: unknown;
  try {
    body = JSON5.parse(text);
  } catch (err) {
    throw new ValidationError(`Device file ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError(`Device file ${file} must hold a JSON object of device properties`);
  }
  const props = body as Record<string, unknown>;
  if (props.version === undefined) {
    throw new ValidationError(
      `Device file ${file} has no "version": add the device's version, e.g. "version": "1.2.3"`,
    );
  }
  const filled = { id: 'device', product: product ?? 'product', ...props };
  try {
    return parseCheckin(Buffer.from(JSON.stringify(filled)));
  } catch (err) {
    throw new ValidationError(`Device file ${file}: ${(err as Error).message}`);
  }
}

export function checkNewVersion(version: string): string {
  parseVersion(version, '--new-version');
  return version;
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
  table: Table,
  product: string,
  policy: CompiledPolicy,
  newVersion: string | undefined,
  sampleSize = 10,
): Promise<FleetMatch> {
  const items = await table.query(keys.devicesOf(product).pk);
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
