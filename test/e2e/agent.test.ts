/**
 * The real agent process against the real local cloud (issue 5): publish with the real CLI, run
 * `updraft-agent --once` with the default apply script, and read the outcome back with `updraft stats`.
 * Also through a proxy that cuts the image download at 20 random offsets, and with signed updates.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud } from '#local/cloud.ts';
import {
  type FaultProxy,
  onceArgs,
  runAgent,
  seededRandom,
  startFaultProxy,
  writeAgentFiles,
} from '#test/integration/agent-fixtures.ts';
import { runUpdraft } from './cli-helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const AGENT = join(ROOT, 'bin/updraft-agent.js');
const SCRIPT = join(ROOT, 'scripts/update');
const quiet = { info() {}, warn() {}, error() {} };
// biome-ignore lint/suspicious/noTemplateCurlyInString: ioto.json5 substitutes ${VAR} from the environment.
const TOKEN_FROM_ENV = '${UPDRAFT_TOKEN}';

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

let work: string;
let dataDir: string;
let cloud: Awaited<ReturnType<typeof startLocalCloud>>;
let proxy: FaultProxy;
let image: Buffer;
const env = () => ({ UPDRAFT_DATA: dataDir, UPDRAFT_TOKEN: cloud.devToken });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'updraft-agent-e2e-'));
  dataDir = join(work, 'data');
  // Images reach devices through a fault proxy in front of the embedded S3, as a flaky network would.
  const s3Port = await freePort();
  const rnd = seededRandom(7);
  image = randomBytes(4 * 1024 * 1024);
  const cuts = Array.from({ length: 20 }, () => 1 + Math.floor(rnd() * (image.length - 2))).sort(
    (a, b) => a - b,
  );
  proxy = await startFaultProxy(
    `http://127.0.0.1:${s3Port}`,
    cuts.map((at) => ({ kind: 'cut', at })),
  );
  const s3PublicUrl = new URL(proxy.rewrite('http://127.0.0.1:1/')).origin;
  cloud = await startLocalCloud({ dataDir, port: 0, s3Port, s3PublicUrl, log: quiet });
});

afterAll(async () => {
  await cloud?.stop();
  await proxy?.close();
  rmSync(work, { recursive: true, force: true });
});

/** A device at 1.1.0 trusting `keys`, run once against the cloud. */
async function device1_1(id: string, keys: string[]) {
  const dir = join(work, id);
  const files = writeAgentFiles(dir, {
    api: cloud.apiUrl,
    token: TOKEN_FROM_ENV,
    script: SCRIPT,
    keys,
    version: '1.1.0',
    device: { id },
  });
  const args = onceArgs(files, join(dir, 'state'));
  return { ...files, run: await runAgent(AGENT, args, { cwd: dir, env: env(), timeoutMs: 30_000 }) };
}

describe('updraft-agent --once against the local cloud', () => {
  it('downloads through 20 cuts, verifies, applies with scripts/update, reports; stats shows the success', async () => {
    const file = join(work, 'image-1.1.0.bin');
    writeFileSync(file, image);
    const published = await runUpdraft(
      ['publish', '--product', 'demo', '--version', '1.1.0', '--file', file],
      env(),
    );
    expect(published.code, published.stderr).toBe(0);

    const device = join(work, 'device');
    const files = writeAgentFiles(device, { api: cloud.apiUrl, token: TOKEN_FROM_ENV, script: SCRIPT });
    const args = onceArgs(files, join(device, 'state'));
    const run = await runAgent(AGENT, args, { cwd: device, env: env(), timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(proxy.pending).toHaveLength(0);
    expect(proxy.triggered.length).toBe(20);

    // The default script installed the exact bytes and recorded the new version.
    const installed = readFileSync(join(device, 'state/installed/demo-1.1.0.img'));
    expect(createHash('sha256').update(installed).digest('hex')).toBe(
      createHash('sha256').update(image).digest('hex'),
    );
    expect(readFileSync(files.ioto, 'utf8')).toMatch(/"version": "1\.1\.0"/);

    await cloud.flush();
    const stats = await runUpdraft(['stats', '--product', 'demo', '--json'], env());
    expect(stats.code, stats.stderr).toBe(0);
    const update = (
      JSON.parse(stats.stdout) as {
        updates: { version: string; success: number; failure: number; started: number }[];
      }
    ).updates.find((u) => u.version === '1.1.0');
    expect(update).toMatchObject({ started: 1, success: 1, failure: 0 });

    // Running again: already at 1.1.0, nothing to do.
    const again = await runAgent(AGENT, args, { cwd: device, env: env(), timeoutMs: 30_000 });
    expect(again.code, again.stderr).toBe(0);
  }, 120_000);

  it('applies a signed update with the right key, rejects it with another, and reports the rejection', async () => {
    const keys = join(work, 'keys');
    const generated = await runUpdraft(['keys', 'generate', '--out', keys, '--json'], env());
    expect(generated.code, generated.stderr).toBe(0);
    const { publicKey, privateKeyFile } = JSON.parse(generated.stdout) as {
      publicKey: string;
      privateKeyFile: string;
    };
    const file = join(work, 'image-2.0.0.bin');
    writeFileSync(file, randomBytes(64 * 1024));
    const published = await runUpdraft(
      ['publish', '--product', 'demo', '--version', '2.0.0', '--file', file, '--sign-key', privateKeyFile],
      env(),
    );
    expect(published.code, published.stderr).toBe(0);

    const wrongKey = (
      JSON.parse((await runUpdraft(['keys', 'generate', '--json'], env())).stdout) as { publicKey: string }
    ).publicKey;
    const bad = await device1_1('dev-wrong-key', [wrongKey]);
    expect(bad.run.code).not.toBe(0);
    expect(bad.run.stderr).toMatch(/signature/i);
    expect(readFileSync(bad.ioto, 'utf8')).toMatch(/"version": "1\.1\.0"/);

    const good = await device1_1('dev-right-key', [publicKey]);
    expect(good.run.code, good.run.stderr).toBe(0);
    expect(readFileSync(good.ioto, 'utf8')).toMatch(/"version": "2\.0\.0"/);

    const stats = await runUpdraft(['stats', '--product', 'demo', '--json'], env());
    const update = (
      JSON.parse(stats.stdout) as { updates: { version: string; success: number; failure: number }[] }
    ).updates.find((u) => u.version === '2.0.0');
    expect(update).toMatchObject({ success: 1, failure: 1 });
  }, 120_000);

  it('update.apply: outside the window verifies but does not apply; a restart in the window applies without downloading again', async () => {
    const file = join(work, 'image-windowed.bin');
    writeFileSync(file, randomBytes(256 * 1024));
    const published = await runUpdraft(
      // The newest version of the product the device token serves, whichever tests ran before.
      ['publish', '--product', 'demo', '--version', '3.0.0', '--file', file],
      env(),
    );
    expect(published.code, published.stderr).toBe(0);
    const dir = join(work, 'dev-windowed');
    const files = writeAgentFiles(dir, {
      api: cloud.apiUrl,
      token: TOKEN_FROM_ENV,
      script: SCRIPT,
      device: { id: 'dev-windowed' },
    });
    // Twelve hours from now, local time, as the cron pattern reads it: far outside any run of this test.
    setApplyWindow(files.ioto, `* ${(new Date().getHours() + 12) % 24} * * *`);
    const args = onceArgs(files, join(dir, 'state'));
    const requestsBefore = proxy.requests;

    const outside = await runAgent(AGENT, args, { cwd: dir, env: env(), timeoutMs: 30_000 });
    expect(outside.code, outside.stderr).toBe(0);
    expect(outside.stderr).toMatch(/update\.apply lets it apply at \d{4}-\d\d-\d\dT\d\d:00:00\.000Z/);
    expect(readFileSync(files.ioto, 'utf8')).toMatch(/"version": "1\.0\.0"/);
    expect(existsSync(join(dir, 'state/installed'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'state/state.json'), 'utf8')).state).toBe('waiting');
    const downloaded = proxy.requests - requestsBefore;
    expect(downloaded).toBeGreaterThan(0);

    setApplyWindow(files.ioto, '* * * * *');
    const inside = await runAgent(AGENT, args, { cwd: dir, env: env(), timeoutMs: 30_000 });
    expect(inside.code, inside.stderr).toBe(0);
    expect(readFileSync(files.ioto, 'utf8')).toMatch(/"version": "3\.0\.0"/);
    expect(readFileSync(join(dir, 'state/installed/demo-3.0.0.img'))).toEqual(readFileSync(file));
    expect(proxy.requests - requestsBefore).toBe(downloaded);
  }, 120_000);
});

/** Sets `update.apply` in an ioto.json5 written by writeAgentFiles (a comment line, then JSON). */
function setApplyWindow(ioto: string, pattern: string): void {
  const [comment, ...json] = readFileSync(ioto, 'utf8').split('\n');
  const config = JSON.parse(json.join('\n')) as { update: Record<string, unknown> };
  config.update.apply = pattern;
  writeFileSync(ioto, `${comment}\n${JSON.stringify(config, null, 2)}\n`);
}
