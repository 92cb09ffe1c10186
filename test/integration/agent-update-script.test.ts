/**
 * The default apply script, scripts/update, run as the agent runs it: the rewritten ioto.json5 keeps
 * its mode and its symlink, only the top-level `version` changes, and nothing is left world-readable.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import JSON5 from 'json5';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve('scripts/update');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Run {
  readonly dir: string;
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs scripts/update on a small image with `config` as UPDATE_CONFIG, under the usual umask 022. */
function runUpdate(prepare: (dir: string) => string, version = '1.1.0'): Run {
  const dir = mkdtempSync(join(tmpdir(), 'agent-update-script-'));
  dirs.push(dir);
  const image = join(dir, 'image.bin');
  writeFileSync(image, 'image bytes', { mode: 0o600 });
  const config = prepare(dir);
  const run = spawnSync('/bin/sh', ['-c', 'umask 022; exec "$0" "$1"', SCRIPT, image], {
    env: {
      ...process.env,
      UPDATE_VERSION: version,
      UPDATE_PRODUCT: 'demo',
      UPDATE_STATE_DIR: join(dir, 'state'),
      UPDATE_CONFIG: config,
    },
    encoding: 'utf8',
  });
  return { dir, code: run.status, stderr: run.stderr };
}

const CONFIG = `// version: "0.0.1" in a comment is not the key
{
  /* "version": '0.0.2' */ name: "a:b 'version'",
  deps: { version: "9.9.9", list: [{ version: '8.8.8' }] },
  update: { token: "secret-token", api: "http://x/*not a comment*/" },
  "version" : '1.0.0', // the running version
  note: "escaped \\"version\\": \\"7.0.0\\" in a string",
}
`;

describe('scripts/update', () => {
  it('rewrites the real file behind a symlink, keeping mode 0600 and the link', () => {
    const run = runUpdate((dir) => {
      mkdirSync(join(dir, 'real'));
      writeFileSync(join(dir, 'real/ioto.json5'), CONFIG);
      chmodSync(join(dir, 'real/ioto.json5'), 0o600);
      symlinkSync('real/ioto.json5', join(dir, 'ioto.json5'));
      return join(dir, 'ioto.json5');
    });
    expect(run.code, run.stderr).toBe(0);
    expect(lstatSync(join(run.dir, 'ioto.json5')).isSymbolicLink()).toBe(true);
    // A token-bearing config must not become world-readable (it did: 0644 under umask 022).
    expect(statSync(join(run.dir, 'real/ioto.json5')).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(run.dir, 'real'))).toEqual(['ioto.json5']);
    const text = readFileSync(join(run.dir, 'real/ioto.json5'), 'utf8');
    // Only the top-level value changed; comments, nested keys and layout are kept.
    expect(text).toBe(CONFIG.replace(`"version" : '1.0.0'`, `"version" : '1.1.0'`));
    expect(JSON5.parse(text)).toMatchObject({ version: '1.1.0', deps: { version: '9.9.9' } });
  });

  it('keeps a looser mode too, and installs the image 0600', () => {
    const run = runUpdate((dir) => {
      writeFileSync(join(dir, 'ioto.json5'), CONFIG);
      chmodSync(join(dir, 'ioto.json5'), 0o640);
      return join(dir, 'ioto.json5');
    });
    expect(run.code, run.stderr).toBe(0);
    expect(statSync(join(run.dir, 'ioto.json5')).mode & 0o777).toBe(0o640);
    const installed = join(run.dir, 'state/installed/demo-1.1.0.img');
    expect(readFileSync(installed, 'utf8')).toBe('image bytes');
    expect(statSync(installed).mode & 0o777).toBe(0o600);
  });

  it('finds the top-level version in one-line JSON after a nested one', () => {
    const run = runUpdate((dir) => {
      writeFileSync(join(dir, 'ioto.json'), '{"update":{"version":"2.0.0"},"version":"1.0.0"}');
      return join(dir, 'ioto.json');
    }, '1.2.0-rc.1');
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(run.dir, 'ioto.json'), 'utf8')).toBe(
      '{"update":{"version":"2.0.0"},"version":"1.2.0-rc.1"}\n',
    );
  });

  it.each([
    ['a numeric version', '{ version: 1.0 }\n', /version: must be a string/],
    ['only a nested version', '{ update: { version: "1.0.0" } }\n', /no top-level "version" entry/],
    ['an unterminated string', '{ version: "1.0.0 }\n', /not valid JSON5/],
  ])('refuses %s with one line and leaves the file as it was', (_name, text, message) => {
    const run = runUpdate((dir) => {
      writeFileSync(join(dir, 'ioto.json5'), text);
      return join(dir, 'ioto.json5');
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect(readFileSync(join(run.dir, 'ioto.json5'), 'utf8')).toBe(text);
    expect(readdirSync(run.dir).sort()).toEqual(['image.bin', 'ioto.json5', 'state']);
  });
});
