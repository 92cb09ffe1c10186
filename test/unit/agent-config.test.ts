import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig, parseDeviceConfig, parseIotoConfig, readConfiguredVersion } from '#agent/config.ts';
import { ConfigError } from '#agent/errors.ts';
import { generateKeyPair } from '#core/manifest.ts';

const FILE = 'config/ioto.json5';
const ENV = { UPDRAFT_TOKEN: 'tok-123' };
const VALID = {
  version: '1.0.0',
  update: { api: 'https://cloud.example.com/', token: 'abc' },
};

function parse(value: unknown, env: NodeJS.ProcessEnv = ENV) {
  return parseIotoConfig(value, FILE, env, '/opt/device');
}

/** The one-line message of the ConfigError that `fn` throws. */
function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseIotoConfig', () => {
  it('applies defaults: enabled, 24 hrs period, no jitter, no keys, no script', () => {
    expect(parse(VALID)).toEqual({
      version: '1.0.0',
      enabled: true,
      api: 'https://cloud.example.com',
      token: 'abc',
      period: 86_400,
      jitter: 0,
      applyTimeout: 600,
      stallTimeout: 60,
      keys: [],
    });
  });

  it('reads Ioto durations, keys, the token from the environment, and resolves the script path', () => {
    const key = generateKeyPair();
    const config = parse({
      version: '2.0.0-rc.1',
      services: { update: true },
      update: {
        ...VALID.update,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the config syntax for an environment variable.
        token: '${UPDRAFT_TOKEN}',
        period: '1 day',
        jitter: '15 min',
        applyTimeout: '30 secs',
        keys: [key.publicKey, key.publicKeyPem],
      },
      scripts: { update: 'scripts/update', version: 'cat /etc/version' },
    });
    expect(config).toMatchObject({
      version: '2.0.0-rc.1',
      token: 'tok-123',
      period: 86_400,
      jitter: 900,
      applyTimeout: 30,
      keys: [key.publicKey, key.publicKeyPem.trim()],
      updateScript: '/opt/device/scripts/update',
      versionCommand: 'cat /etc/version',
    });
  });

  it('reads update.schedule and update.apply as cron patterns (Ioto), trimmed', () => {
    const windows = { schedule: ' */15 * * * * ', apply: '* 1-4 * * 1-5' };
    expect(parse({ ...VALID, update: { ...VALID.update, ...windows } })).toMatchObject({
      schedule: '*/15 * * * *',
      apply: '* 1-4 * * 1-5',
    });
    expect(parse(VALID)).not.toHaveProperty('apply');
  });

  it('accepts timeouts up to 24 days', () => {
    const config = parse({
      ...VALID,
      update: { ...VALID.update, applyTimeout: '24 days', stallTimeout: '1 day' },
    });
    expect([config.applyTimeout, config.stallTimeout]).toEqual([24 * 86_400, 86_400]);
  });

  it('reads update.throttle as milliseconds (a number, digits or a duration), capped at 5 s like Ioto', () => {
    const throttle = (value: unknown) =>
      parse({ ...VALID, update: { ...VALID.update, throttle: value } }).throttleMs;
    expect(throttle(250)).toBe(250);
    expect(throttle('40')).toBe(40);
    expect(throttle('100 ms')).toBe(100);
    expect(throttle('1.5 secs')).toBe(1500);
    expect(throttle(9000)).toBe(5000);
    expect(throttle(0)).toBeUndefined();
    expect(parse(VALID).throttleMs).toBeUndefined();
  });

  it.each([
    ['negative', -5],
    ['not a duration', 'fast'],
    ['a boolean', true],
    ['a list', [100]],
  ])('refuses update.throttle %s with one line', (_name, value) => {
    expect(problem(() => parse({ ...VALID, update: { ...VALID.update, throttle: value } }))).toBe(
      `${FILE}: update.throttle: ${JSON.stringify(value)} is not a pause between reads; use milliseconds, e.g. 100 or "100 ms"`,
    );
  });

  it('is disabled by services.update or update.enable, and then needs no endpoint', () => {
    expect(parse({ version: '1.0.0', services: { update: false } }).enabled).toBe(false);
    expect(parse({ version: '1.0.0', update: { enable: false } }).enabled).toBe(false);
  });

  it.each([
    ['not an object', [], `${FILE}: must hold a JSON5 object`],
    [
      'no version',
      { update: VALID.update },
      `${FILE}: version: missing; set the running version, e.g. "1.0.0"`,
    ],
    [
      'version not strict SemVer',
      { ...VALID, version: 'v1.0.0' },
      `${FILE}: version: "v1.0.0" is not SemVer 2.0`,
    ],
    [
      'no api',
      { version: '1.0.0', update: { token: 'x' } },
      `${FILE}: update.api: missing; set the device cloud URL, e.g. "http://127.0.0.1:4000"`,
    ],
    [
      'api not http',
      { ...VALID, update: { ...VALID.update, api: 'ftp://x' } },
      `${FILE}: update.api: "ftp://x" must start with http:// or https://`,
    ],
    [
      'api not a URL',
      { ...VALID, update: { ...VALID.update, api: 'cloud' } },
      `${FILE}: update.api: "cloud" is not a URL`,
    ],
    [
      'no token',
      { ...VALID, update: { api: 'http://x' } },
      `${FILE}: update.token: missing; set the device token or "\${UPDRAFT_TOKEN}"`,
    ],
    [
      'token variable unset',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config syntax for an environment variable.
      { ...VALID, update: { ...VALID.update, token: '${NOPE}' } },
      `${FILE}: update.token: environment variable NOPE is not set`,
    ],
    [
      'bad period',
      { ...VALID, update: { ...VALID.update, period: 'daily' } },
      `${FILE}: update.period: Invalid duration for update.period: "daily" (use e.g. "24 hrs", "30 secs")`,
    ],
    [
      'period too short',
      { ...VALID, update: { ...VALID.update, period: '500 msecs' } },
      `${FILE}: update.period: must be at least 1 second`,
    ],
    [
      'bad jitter',
      { ...VALID, update: { ...VALID.update, jitter: -1 } },
      `${FILE}: update.jitter: Invalid duration for update.jitter: -1 (use e.g. "24 hrs", "30 secs")`,
    ],
    [
      'enable not boolean',
      { ...VALID, update: { ...VALID.update, enable: 'yes' } },
      `${FILE}: update.enable: must be true or false`,
    ],
    [
      'keys not a list',
      { ...VALID, update: { ...VALID.update, keys: 42 } },
      `${FILE}: update.keys: must be a string or a list of strings`,
    ],
    [
      'key malformed',
      { ...VALID, update: { ...VALID.update, keys: ['abc'] } },
      `${FILE}: update.keys[0]: not an Ed25519 public key (base64 of 32 bytes, or PEM)`,
    ],
    [
      'script not a string',
      { ...VALID, scripts: { update: true } },
      `${FILE}: scripts.update: must be a string`,
    ],
    [
      // `version: 1.0` in JSON5 is the number 1, not a missing key.
      'version a number',
      { ...VALID, version: 1.0 },
      `${FILE}: version: must be a string, e.g. "1.0.0", not 1 (quote it)`,
    ],
    [
      // Past 2^31-1 ms a Node timer fires at once: every script would be killed on the spot.
      'applyTimeout past what a timer holds',
      { ...VALID, update: { ...VALID.update, applyTimeout: '25 days' } },
      `${FILE}: update.applyTimeout: must be at most 24 days`,
    ],
    [
      'stallTimeout past what a timer holds',
      { ...VALID, update: { ...VALID.update, stallTimeout: '1 month' } },
      `${FILE}: update.stallTimeout: must be at most 24 days`,
    ],
    [
      'apply not a cron pattern',
      { ...VALID, update: { ...VALID.update, apply: 'nightly' } },
      `${FILE}: update.apply: not a cron pattern (minute hour day month weekday): invalid configuration format ('nightly'), exactly five, six, or seven space separated parts are required.`,
    ],
    [
      'schedule with seconds (six fields)',
      { ...VALID, update: { ...VALID.update, schedule: '0 * * * * *' } },
      `${FILE}: update.schedule: not a cron pattern (minute hour day month weekday): mode '5-part' requires exactly 5 parts, but pattern '0 * * * * *' has 6 parts.`,
    ],
    [
      'apply hour out of range',
      { ...VALID, update: { ...VALID.update, apply: '* 24 * * *' } },
      `${FILE}: update.apply: not a cron pattern (minute hour day month weekday): Invalid value for hour: 24`,
    ],
    [
      'apply never matches',
      { ...VALID, update: { ...VALID.update, apply: '0 3 31 2 *' } },
      `${FILE}: update.apply: "0 3 31 2 *" matches no minute from now on`,
    ],
    [
      'schedule not a string',
      { ...VALID, update: { ...VALID.update, schedule: 5 } },
      `${FILE}: update.schedule: must be a string`,
    ],
  ])('%s', (_name, value, message) => {
    expect(problem(() => parse(value))).toBe(message);
  });
});

describe('parseDeviceConfig', () => {
  const DEVICE = 'config/device.json5';

  it('keeps custom properties and lets ioto.json5 own the version', () => {
    const identity = parseDeviceConfig(
      { id: 'dev-1', product: 'demo', version: '0.0.1', hw: { rev: 2 }, beta: 'true' },
      DEVICE,
      '1.0.0',
    );
    expect(identity).toEqual({
      id: 'dev-1',
      product: 'demo',
      properties: { id: 'dev-1', product: 'demo', hw: { rev: 2 }, beta: 'true' },
    });
  });

  it.each([
    ['no id', { product: 'demo' }, `${DEVICE}: id: missing; set the device id`],
    ['no product', { id: 'd' }, `${DEVICE}: product: missing; set the device product name`],
    [
      'id with a space',
      { id: 'a b', product: 'demo' },
      `${DEVICE}: id: Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -`,
    ],
    [
      'reserved key',
      { id: 'd', product: 'p', constructor: 1 },
      `${DEVICE}: constructor: Invalid property name "constructor": reserved, use another name`,
    ],
    [
      'array value',
      { id: 'd', product: 'p', tags: ['a'] },
      `${DEVICE}: tags: Invalid "tags": arrays are not supported; send a string or a nested object`,
    ],
  ])('%s', (_name, value, message) => {
    expect(problem(() => parseDeviceConfig(value, DEVICE, '1.0.0'))).toBe(message);
  });
});

describe('loadAgentConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the repository examples used by the README quickstart', () => {
    const config = loadAgentConfig(undefined, ENV, resolve('.'));
    expect(config).toMatchObject({
      version: '1.0.0',
      api: 'http://127.0.0.1:4000',
      token: 'tok-123',
      period: 86_400,
      jitter: 3600,
      updateScript: resolve('scripts/update'),
      device: { product: 'demo' },
    });
    expect(config.files?.ioto).toBe(resolve('config/ioto.json5'));
  });

  it('reads the proxy variables, and names a bad one in one line', () => {
    const config = loadAgentConfig(
      undefined,
      { ...ENV, HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '.corp' },
      resolve('.'),
    );
    expect(config.proxy?.https?.href).toBe('http://proxy:3128/');
    expect(
      problem(() => loadAgentConfig(undefined, { ...ENV, https_proxy: 'socks5://p:1080' }, resolve('.'))),
    ).toBe('environment: https_proxy: socks5: proxies are not supported; use an http:// or https:// proxy');
  });

  it('readConfiguredVersion says a numeric version must be a string', () => {
    writeFileSync(join(dir, 'numeric.json5'), '{ version: 1.0 }\n');
    expect(problem(() => readConfiguredVersion(join(dir, 'numeric.json5')))).toBe(
      `${join(dir, 'numeric.json5')}: version: must be a string, e.g. "1.0.0", not 1`,
    );
  });

  it('names the file in read and syntax errors', () => {
    writeFileSync(join(dir, 'bad.json5'), '{ version: "1.0.0", update: { api: }\n');
    expect(problem(() => loadAgentConfig({ ioto: 'missing.json5', device: 'd.json5' }, ENV, dir))).toBe(
      'missing.json5: cannot read the file (ENOENT)',
    );
    expect(problem(() => loadAgentConfig({ ioto: 'bad.json5', device: 'd.json5' }, ENV, dir))).toMatch(
      /^bad\.json5: not valid JSON5: invalid character '}' at 1:36$/,
    );
  });
});
