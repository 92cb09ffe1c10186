/**
 * Agent configuration (DESIGN §7), read once at start.
 *
 * `ioto.json5` (keys the agent reads; every other key is left to other Ioto services):
 *   version          running version, strict SemVer 2.0. The update script is expected to change it.
 *   services.update  false turns the agent off (default true).
 *   update.enable    false turns the agent off (default true).
 *   update.api       device cloud endpoint, http(s) URL, e.g. "https://xyz.execute-api…/" (required).
 *   update.token     device token; "${NAME}" reads the environment variable NAME (required).
 *   update.period    time between checkins, Ioto duration (default "24 hrs"). A cloud's `nextCheckin`
 *                    overrides it, clamped to [60 secs, 7 days] (schedule.ts).
 *   update.jitter    random delay added to each period (default "0 secs").
 *   update.schedule  cron pattern (minute hour day month weekday, local time): a scheduled checkin runs
 *                    only in a minute it matches, once the period has passed (windows.ts).
 *   update.apply     cron pattern: a verified image is applied only in a minute it matches; until then
 *                    it waits in the state directory, across restarts.
 *   update.keys      Ed25519 public keys (base64 raw 32 bytes or PEM), one string or a list. When set,
 *                    every offer must carry a signature that verifies with one of them.
 *   update.applyTimeout  limit on the update script (default "10 mins", at most 24 days). Updraft extension.
 *   update.stallTimeout  a download with no byte for this long is retried (default "60 secs", at most
 *                    24 days). Extension.
 *   update.throttle  download pacing as in Ioto: a pause after each read of the image, in milliseconds
 *                    (a number, or a duration such as "250 ms"); 0 by default; capped at 5 s like Ioto.
 *   scripts.update   executable run as `<script> <absolute image path>`; relative paths are from the
 *                    working directory, as in Ioto.
 *   scripts.version  optional shell command whose stdout is the running version; used to confirm an
 *                    update instead of re-reading `version` from ioto.json5. Updraft extension.
 * `device.json5`: `id`, `product` and any custom properties, sent with every checkin (DESIGN §2).
 * The environment: `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (proxy.ts), checked here at start.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import JSON5 from 'json5';
import { parseCheckin } from '#core/device.ts';
import { parseDuration } from '#core/duration.ts';
import { ValidationError } from '#core/errors.ts';
import type { DeviceObject } from '#core/types.ts';
import { isSemver } from '#core/version.ts';
import { ConfigError } from './errors.ts';
import { ProxySettingError, type ProxySettings, proxySettingsFromEnv } from './proxy.ts';
import { CronWindow } from './windows.ts';

export interface DeviceIdentity {
  readonly id: string;
  readonly product: string;
  /** Every property of device.json5, id and product included: the base of the checkin body. */
  readonly properties: DeviceObject;
}

export interface AgentConfig {
  /** Where the configuration came from; absent when built in code. Used to re-read `version`. */
  readonly files?: { readonly ioto: string; readonly device: string };
  readonly version: string;
  /** false when `services.update` or `update.enable` is false. */
  readonly enabled: boolean;
  /** Endpoint without a trailing slash; requests go to `${api}/tok/provision/update`. */
  readonly api: string;
  readonly token: string;
  /** Seconds. */
  readonly period: number;
  readonly jitter: number;
  readonly applyTimeout: number;
  readonly stallTimeout: number;
  /** `update.throttle` in ms, when set and above 0. */
  readonly throttleMs?: number;
  /** From the environment's proxy variables; absent when built in code (http.ts then reads them). */
  readonly proxy?: ProxySettings;
  readonly keys: readonly string[];
  /** Absolute path of the update script, if configured. */
  readonly updateScript?: string;
  readonly versionCommand?: string;
  /** `update.schedule`: cron pattern of the minutes a scheduled checkin may run in (Ioto). */
  readonly schedule?: string;
  /** `update.apply`: cron pattern of the minutes a verified image may be applied in (Ioto). */
  readonly apply?: string;
  readonly device: DeviceIdentity;
}

export interface ConfigFiles {
  readonly ioto: string;
  readonly device: string;
}

export const DEFAULT_CONFIG_FILES: ConfigFiles = {
  ioto: 'config/ioto.json5',
  device: 'config/device.json5',
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Node timers hold at most 2^31-1 ms (about 24.8 days); a longer one fires at once, which would kill
 * every update script on the spot. 24 days is the round limit below that.
 */
const MAX_TIMEOUT_SECONDS = 24 * 86_400;

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** Reads, parses and validates both files. Throws ConfigError naming the file, the key and the problem. */
export function loadAgentConfig(
  files: ConfigFiles = DEFAULT_CONFIG_FILES,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): AgentConfig {
  const ioto = resolve(cwd, files.ioto);
  const device = resolve(cwd, files.device);
  const settings = parseIotoConfig(readJson5(files.ioto, ioto), files.ioto, env, cwd);
  const identity = parseDeviceConfig(readJson5(files.device, device), files.device, settings.version);
  if (settings.updateScript) checkExecutable(files.ioto, settings.updateScript);
  return { ...settings, device: identity, files: { ioto, device }, proxy: proxySettings(env) };
}

function proxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  try {
    return proxySettingsFromEnv(env);
  } catch (err) {
    if (err instanceof ProxySettingError) throw new ConfigError('environment', err.variable, err.problem);
    throw err;
  }
}

/** Ioto caps `update.throttle` at 5 s. */
const MAX_THROTTLE_MS = 5000;

/** `update.throttle`: milliseconds as a number or digits, or a duration with a unit ("250 ms"). */
function parseThrottle(file: string, value: unknown): number {
  if (value === undefined || value === null) return 0;
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) ms = Number(value);
  else if (typeof value === 'string') {
    try {
      ms = parseDuration(value, 'update.throttle') * 1000;
    } catch {
      ms = undefined;
    }
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw new ConfigError(
      file,
      'update.throttle',
      `${JSON.stringify(value)} is not a pause between reads; use milliseconds, e.g. 100 or "100 ms"`,
    );
  }
  return Math.min(Math.round(ms), MAX_THROTTLE_MS);
}

/** The `version` of an ioto.json5 file: how the agent learns the running version after an update. */
export function readConfiguredVersion(file: string): string {
  const value = readJson5(file, file);
  const version = isObject(value) ? value.version : undefined;
  if (version !== undefined && typeof version !== 'string') {
    throw new ConfigError(file, 'version', `must be a string, e.g. "1.0.0", not ${JSON.stringify(version)}`);
  }
  if (typeof version !== 'string' || !isSemver(version)) {
    throw new ConfigError(file, 'version', 'missing or not SemVer 2.0');
  }
  return version;
}

function readJson5(shown: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(shown, '', `cannot read the file (${code})`, { cause });
  }
  try {
    return JSON5.parse(text);
  } catch (cause) {
    // json5 messages already carry "at line:column".
    throw new ConfigError(shown, '', `not valid JSON5: ${(cause as Error).message.replace(/^JSON5: /, '')}`, {
      cause,
    });
  }
}

function checkExecutable(file: string, script: string): void {
  try {
    accessSync(script, constants.X_OK);
  } catch {
    throw new ConfigError(file, 'scripts.update', `${script} does not exist or is not executable`);
  }
}

function duration(file: string, key: string, value: unknown, fallback: string): number {
  try {
    return parseDuration((value ?? fallback) as string | number, key);
  } catch (err) {
    if (err instanceof ValidationError) throw new ConfigError(file, key, err.message);
    throw err;
  }
}

function optionalString(file: string, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new ConfigError(file, key, 'must be a string');
  return value;
}

function parseApi(file: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(
      file,
      'update.api',
      'missing; set the device cloud URL, e.g. "http://127.0.0.1:4000"',
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(file, 'update.api', `${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(file, 'update.api', `${JSON.stringify(value)} must start with http:// or https://`);
  }
  return value.replace(/\/+$/, '');
}

function parseToken(file: string, value: unknown, env: NodeJS.ProcessEnv): string {
  if (typeof value !== 'string' || value === '') {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: "${NAME}" is the literal config syntax.
    throw new ConfigError(file, 'update.token', 'missing; set the device token or "${UPDRAFT_TOKEN}"');
  }
  const ref = ENV_REFERENCE.exec(value);
  if (!ref) return value;
  const name = ref[1]!;
  const fromEnv = env[name];
  if (!fromEnv) throw new ConfigError(file, 'update.token', `environment variable ${name} is not set`);
  return fromEnv;
}

function parseKeys(file: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list))
    throw new ConfigError(file, 'update.keys', 'must be a string or a list of strings');
  return list.map((key, i) => {
    const at = `update.keys[${i}]`;
    if (typeof key !== 'string') throw new ConfigError(file, at, 'must be a string');
    const trimmed = key.trim();
    if (!trimmed.startsWith('-----BEGIN PUBLIC KEY-----') && !BASE64_KEY.test(trimmed)) {
      throw new ConfigError(file, at, 'not an Ed25519 public key (base64 of 32 bytes, or PEM)');
    }
    return trimmed;
  });
}

/** Validates a parsed ioto.json5. Pure: the environment and working directory are parameters. */
export function parseIotoConfig(
  value: unknown,
  file: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Omit<AgentConfig, 'device' | 'files'> {
  if (!isObject(value)) throw new ConfigError(file, '', 'must hold a JSON5 object');
  const { version } = value;
  if (version === undefined || version === null) {
    throw new ConfigError(file, 'version', 'missing; set the running version, e.g. "1.0.0"');
  }
  if (typeof version !== 'string') {
    // `version: 1.0` parses as the number 1: say so rather than "missing".
    throw new ConfigError(
      file,
      'version',
      `must be a string, e.g. "1.0.0", not ${JSON.stringify(version)} (quote it)`,
    );
  }
  if (!isSemver(version))
    throw new ConfigError(file, 'version', `${JSON.stringify(version)} is not SemVer 2.0`);

  const services = value.services ?? {};
  if (!isObject(services)) throw new ConfigError(file, 'services', 'must be an object');
  if (services.update !== undefined && typeof services.update !== 'boolean') {
    throw new ConfigError(file, 'services.update', 'must be true or false');
  }
  const update = value.update ?? {};
  if (!isObject(update)) throw new ConfigError(file, 'update', 'must be an object');
  if (update.enable !== undefined && typeof update.enable !== 'boolean') {
    throw new ConfigError(file, 'update.enable', 'must be true or false');
  }
  const scripts = value.scripts ?? {};
  if (!isObject(scripts)) throw new ConfigError(file, 'scripts', 'must be an object');

  const enabled = services.update !== false && update.enable !== false;
  const period = duration(file, 'update.period', update.period, '24 hrs');
  if (period < 1) throw new ConfigError(file, 'update.period', 'must be at least 1 second');
  const applyTimeout = duration(file, 'update.applyTimeout', update.applyTimeout, '10 mins');
  const stallTimeout = duration(file, 'update.stallTimeout', update.stallTimeout, '60 secs');
  for (const [key, seconds] of [
    ['update.applyTimeout', applyTimeout],
    ['update.stallTimeout', stallTimeout],
  ] as const) {
    if (seconds <= 0) throw new ConfigError(file, key, 'must be more than 0');
    if (seconds > MAX_TIMEOUT_SECONDS) throw new ConfigError(file, key, 'must be at most 24 days');
  }
  const throttleMs = parseThrottle(file, update.throttle);
  const script = optionalString(file, 'scripts.update', scripts.update);
  const versionCommand = optionalString(file, 'scripts.version', scripts.version);
  return {
    version,
    enabled,
    // A disabled agent never talks to the cloud, so it needs no endpoint or token.
    api: enabled ? parseApi(file, update.api) : '',
    token: enabled ? parseToken(file, update.token, env) : '',
    period,
    jitter: duration(file, 'update.jitter', update.jitter, '0 secs'),
    applyTimeout,
    stallTimeout,
    ...(throttleMs > 0 ? { throttleMs } : {}),
    keys: parseKeys(file, update.keys),
    ...(script ? { updateScript: resolve(cwd, script) } : {}),
    ...(versionCommand ? { versionCommand } : {}),
    ...cronWindows(file, update),
  };
}

/** `update.schedule` and `update.apply`, checked to be cron patterns that match some minute. */
function cronWindows(file: string, update: Json): { schedule?: string; apply?: string } {
  const windows: { schedule?: string; apply?: string } = {};
  for (const name of ['schedule', 'apply'] as const) {
    const key = `update.${name}`;
    const pattern = optionalString(file, key, update[name]);
    if (pattern === undefined) continue;
    let window: CronWindow;
    try {
      window = new CronWindow(pattern.trim());
    } catch (err) {
      const why = (err as Error).message.replace(/^CronPattern: /, '');
      throw new ConfigError(file, key, `not a cron pattern (minute hour day month weekday): ${why}`);
    }
    if (window.nextOpen(Date.now()) === undefined) {
      throw new ConfigError(file, key, `${JSON.stringify(pattern)} matches no minute from now on`);
    }
    windows[name] = pattern.trim();
  }
  return windows;
}

/**
 * Validates a parsed device.json5 with the device cloud's own checkin rules (core/device.ts), so a
 * device never sends a body the cloud would refuse with 400.
 */
export function parseDeviceConfig(value: unknown, file: string, version: string): DeviceIdentity {
  if (!isObject(value)) throw new ConfigError(file, '', 'must hold a JSON5 object');
  for (const key of ['id', 'product'] as const) {
    if (typeof value[key] !== 'string' || value[key] === '') {
      throw new ConfigError(file, key, `missing; set the device ${key === 'id' ? 'id' : 'product name'}`);
    }
  }
  try {
    const checkin = parseCheckin(Buffer.from(JSON.stringify({ ...value, version })));
    const { version: _running, ...properties } = checkin.body;
    return { id: checkin.id, product: checkin.product, properties };
  } catch (err) {
    if (err instanceof ValidationError) {
      const field = /"([^"]+)"/.exec(err.message)?.[1] ?? '';
      throw new ConfigError(file, field, err.message);
    }
    throw err;
  }
}
