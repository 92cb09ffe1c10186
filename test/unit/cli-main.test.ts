/** `updraft` commands that need no cloud, run in-process through `main`: help, usage errors, policy check, keys. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeviceFile } from '#admin/policy-check.ts';
import { errorLine } from '#cli/errors.ts';
import { main } from '#cli/main.ts';
import { signManifest, verifyManifest } from '#core/manifest.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'updraft-cli-unit-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs main; returns its exit code and output, or the error line it would print. */
async function run(
  ...argv: string[]
): Promise<{ code: number; out: string; error?: string; detail?: string }> {
  let out = '';
  try {
    const code = await main(argv, (text) => {
      out += text;
    });
    return { code, out };
  } catch (err) {
    return { code: 1, out, ...errorLine(err), error: errorLine(err).message };
  }
}

function deviceFile(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('help and usage errors', () => {
  it('lists every command in the main help', async () => {
    const { code, out } = await run('--help');
    expect(code).toBe(0);
    for (const name of [
      'publish',
      'list',
      'show',
      'enable',
      'disable',
      'delete',
      'edit',
      'policy check',
      'token create',
      'token list',
      'token revoke',
      'stats',
      'keys generate',
    ]) {
      expect(out).toContain(`  ${name} `);
    }
  });

  it.each([
    ['publish'],
    ['list'],
    ['edit'],
    ['policy', 'check'],
    ['token', 'create'],
    ['keys', 'generate'],
    ['stats'],
  ])('prints the usage of %s with --help', async (...command) => {
    const { code, out } = await run(...command, '--help');
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`^Usage: updraft ${command.join(' ')}`));
    expect(out).toContain('--cloud NAME');
  });

  it.each<[string[], RegExp]>([
    [['frob'], /^Unknown command "frob": see updraft --help$/],
    [['token'], /^Missing subcommand: updraft token create\|list\|revoke$/],
    [['publish', '--fil', 'x'], /^Unknown option '--fil': see updraft publish --help$/],
    [['list'], /^Missing --product P: see updraft list --help$/],
    [['show', '--product', 'demo'], /^Missing --version V: see updraft show --help$/],
    [['list', '--product', 'demo', 'extra'], /^Unexpected argument 'extra': see updraft list --help$/],
    [
      ['list', '--product', 'demo', '--cloud', 'all'],
      /^--cloud all works with publish and console only: name one cloud$/,
    ],
    [
      ['edit', '--product', 'p', '--version', '1.0.0', '--limit', 'ten'],
      /^Invalid --limit "ten": use a number, or none to remove it$/,
    ],
    [
      ['publish', '--product', 'p', '--version', '1.0.0', '--file', 'f', '--period', 'soon', '--rate', '1'],
      /^Invalid --period "soon"/,
    ],
    [['token', 'revoke', 'xyz!'], /^Invalid token id "xyz!"/],
  ])('refuses %j', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(1);
    expect(result.error).toMatch(message);
  });

  it('names an unknown cloud with the ones it knows', async () => {
    const outputs = deviceFile(
      'outputs.json',
      JSON.stringify({
        'updraft-prod': {
          CloudName: 'prod',
          ApiUrl: 'https://x.example.com',
          TableName: 't',
          BucketName: 'b',
          Region: 'eu-west-1',
        },
      }),
    );
    const result = await run('list', '--product', 'demo', '--cloud', 'staging', '--outputs', outputs);
    expect(result.error).toBe(`Unknown cloud "staging": use one of local, prod (from ${outputs})`);
    const missing = await run(
      'list',
      '--product',
      'demo',
      '--cloud',
      'prod',
      '--outputs',
      join(dir, 'none.json'),
    );
    expect(missing.error).toMatch(/^No deployed clouds: .*none\.json not found/);
  });
});

describe('policy check', () => {
  it('prints terms and the explanation', async () => {
    const { code, out } = await run('policy', 'check', 'region == "eu" && hw.rev >= 2');
    expect(code).toBe(0);
    expect(out).toContain('Terms:  4');
    expect(out).toContain('property hw.rev');
  });

  it('prints {"ok":true,"terms":n,"match":bool} with --json and a device', async () => {
    const device = deviceFile('eu.json', '{"version": "1.0.0", "region": "eu", "hw": {"rev": "3"}}');
    const match = await run('policy', 'check', 'region == "eu" && hw.rev >= 2', '--device', device, '--json');
    expect(match).toMatchObject({ code: 0 });
    expect(JSON.parse(match.out)).toEqual({ ok: true, terms: 4, match: true });
    const noMatch = await run('policy', 'check', 'region == "us"', '--device', device, '--json');
    expect(JSON.parse(noMatch.out)).toEqual({ ok: true, terms: 2, match: false });
  });

  it('evaluates the default policy against --new-version', async () => {
    const device = deviceFile('old.json', '{"version": "1.0.0"}');
    const newer = await run('policy', 'check', '', '--device', device, '--new-version', '1.1.0', '--json');
    expect(JSON.parse(newer.out)).toEqual({ ok: true, terms: 4, match: true });
    const same = await run('policy', 'check', '', '--device', device, '--new-version', '1.0.0');
    expect(same.out).toContain('Device device (version 1.0.0): no match');
    const bad = await run('policy', 'check', '', '--device', device, '--new-version', '1.1');
    expect(bad.error).toBe('Invalid --new-version "1.1": not SemVer 2.0');
  });

  it('warns about arithmetic that always fails: a line per warning, a "warnings" array with --json', async () => {
    const source = 'model == "X1" + "-pro"';
    const text = await run('policy', 'check', source);
    expect(text.code).toBe(0);
    const fails = 'so this arithmetic always fails (an evaluation error: no match)';
    expect(text.out).toContain(`Warning (column 10): "X1" is not a number, ${fails}\n`);
    expect(text.out).toContain(`Warning (column 17): "-pro" is not a number, ${fails}\n`);
    const device = deviceFile('nomodel.json', '{"version": "1.0.0"}');
    const json = await run('policy', 'check', 'memory == 2^2000', '--device', device, '--json');
    expect(JSON.parse(json.out)).toEqual({
      ok: true,
      terms: 3,
      match: false,
      warnings: [{ reason: `this constant is not a finite number, ${fails}`, column: 11 }],
      evaluationError: true,
    });
    const clean = await run('policy', 'check', 'memory == 2^10', '--json');
    expect(JSON.parse(clean.out)).toEqual({ ok: true, terms: 3 });
  });

  it('prints {"ok":false,"error","column"} and fails for a bad policy', async () => {
    const result = await run('policy', 'check', 'a == ', '--json');
    expect(result.code).toBe(1);
    const json = JSON.parse(result.out) as { ok: boolean; error: string; column: number };
    expect(json).toEqual({ ok: false, error: expect.any(String), column: 6 });
    expect(result.error).toMatch(/at column 6$/);
    expect(result.detail).toBe('a == \n     ^');
  });

  it('takes an EXPR that starts with - for the expression, not for an option', async () => {
    const negative = await run('policy', 'check', '-1 == -1', '--json');
    expect(negative).toMatchObject({ code: 0 });
    expect(JSON.parse(negative.out)).toEqual({ ok: true, terms: 2 });
    const afterOptions = await run('policy', 'check', '--json', '-1');
    expect(JSON.parse(afterOptions.out)).toEqual({ ok: true, terms: 1 });
    const device = deviceFile('cold.json', '{"version": "1.0.0", "temp": -5}');
    const matched = await run('policy', 'check', '--device', device, '-temp > 0', '--json');
    expect(JSON.parse(matched.out)).toEqual({ ok: true, terms: 2, match: true });
    const second = await run('policy', 'check', 'a == 1', '-2');
    expect(second.error).toBe(
      'Unexpected argument "-2": see updraft policy check --help (quote values with spaces)',
    );
    const typo = await run('policy', 'check', 'a == 1', '--fil', 'x');
    expect(typo.error).toBe("Unknown option '--fil': see updraft policy check --help");
  });

  it('takes a flag value that starts with - for the value', async () => {
    const args = ['publish', '--product', 'p', '--version', '1.0.0', '--file', 'f', '--rate', '1'];
    const result = await run(...args, '--period', '-5');
    expect(result.error).toBe('Invalid --period "-5": use a number of seconds or a duration such as "1 hr"');
  });

  it('reads device files as a checkin body, JSON5 allowed, id and product defaulted', () => {
    const device = readDeviceFile(
      deviceFile('d.json5', "{version: '2.0.0-rc.1', // comment\n region: 'eu'}"),
      'router',
    );
    expect(device).toMatchObject({ id: 'device', product: 'router', version: '2.0.0-rc.1' });
    expect(device.body.region).toBe('eu');
    expect(() => readDeviceFile(deviceFile('nov.json', '{"region": "eu"}'))).toThrow(/has no "version"/);
    expect(() => readDeviceFile(deviceFile('badv.json', '{"version": "v1"}'))).toThrow(
      /Invalid version "v1"/,
    );
    expect(() => readDeviceFile(deviceFile('arr.json', '[1]'))).toThrow(/must hold a JSON object/);
    expect(() => readDeviceFile(deviceFile('proto.json', '{"version":"1.0.0","constructor":1}'))).toThrow(
      /reserved/,
    );
    expect(() => readDeviceFile(join(dir, 'missing.json'))).toThrow(/^Device file not found/);
  });
});

describe('keys generate', () => {
  it('writes a key pair whose private key signs what the printed public key verifies', async () => {
    const out = join(dir, 'release.pem');
    const { code, out: printed } = await run('keys', 'generate', '--out', out, '--json');
    expect(code).toBe(0);
    const keys = JSON.parse(printed) as { publicKey: string; privateKeyFile: string };
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const manifest = {
      product: 'p',
      version: '1.0.0',
      sha256: 'a'.repeat(64),
      size: 1,
      allowDowngrade: false,
    };
    const signature = signManifest(manifest, readFileSync(out, 'utf8'));
    expect(verifyManifest(manifest, signature, [keys.publicKey])).toBe(true);
    expect(verifyManifest(manifest, signature, [readFileSync(`${out}.pub`, 'utf8')])).toBe(true);
  });

  it('prints both PEM keys and the update.keys line without --out', async () => {
    const { out } = await run('keys', 'generate');
    expect(out).toContain('-----BEGIN PRIVATE KEY-----');
    expect(out).toContain('-----BEGIN PUBLIC KEY-----');
    expect(out).toMatch(/update: \{ keys: \['[A-Za-z0-9+/]{43}='\] \}/);
  });
});
