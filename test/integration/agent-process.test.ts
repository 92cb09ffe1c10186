/**
 * The single-file agent (as built for devices) run as a real process: exit codes, configuration
 * errors, and SIGKILL at the worst moments followed by a restart.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildAgentBundle,
  type FakeCloud,
  type ImageServer,
  makeCertificate,
  makeImage,
  offer,
  onceArgs,
  processAlive,
  runAgent,
  spawnAgent,
  startFakeCloud,
  startImageServer,
  type TestImage,
  until,
  waitForExit,
  writeAgentFiles,
  writeScript,
} from './agent-fixtures.ts';

/** For scripts that must outlive a killed agent: they wait for the test to create state/go (up to 15 s). */
const WAIT_FOR_GO =
  'i=0; while [ ! -e "$UPDATE_STATE_DIR/go" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done';

const MiB = 1 << 20;
let buildDir: string;
let bundle: string;

beforeAll(async () => {
  buildDir = mkdtempSync(join(tmpdir(), 'agent-bundle-'));
  bundle = await buildAgentBundle(buildDir);
});

afterAll(() => {
  rmSync(buildDir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Env {
  readonly dir: string;
  readonly cloud: FakeCloud;
  readonly server: ImageServer;
  readonly image: TestImage;
  readonly args: string[];
}

/**
 * Runs the agent until its update script (which writes its PID to state/script.pid first) runs, then
 * SIGKILLs the agent; resolves with the script's PID.
 */
async function killAgentMidApply(env: { dir: string; args: readonly string[] }): Promise<number> {
  const pidFile = join(env.dir, 'state/script.pid');
  const child = spawnAgent(bundle, env.args, { cwd: env.dir, env: ENV });
  const exited = waitForExit(child);
  await until(
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'),
    15_000,
    'the script',
  );
  child.kill('SIGKILL');
  expect((await exited).signal).toBe('SIGKILL');
  return Number(readFileSync(pidFile, 'utf8'));
}

/**
 * Reruns the agent after a kill mid-apply and lets the script (waiting for state/go) go on once the
 * rerun says it is waiting for it: the script surely outlives the killed agent and the rerun sees it.
 */
async function rerunReleasingScript(env: { dir: string; args: readonly string[] }) {
  const child = spawnAgent(bundle, env.args, { cwd: env.dir, env: ENV });
  const exited = waitForExit(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await until(() => /is still running; waiting/.test(stderr), 15_000, 'the rerun to wait for the script');
  writeFileSync(join(env.dir, 'state/go'), '');
  return exited;
}

async function makeEnv(
  o: { script?: string; bytesPerSecond?: number; imageSize?: number } = {},
): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-process-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const image = makeImage(join(dir, 'image.bin'), o.imageSize ?? MiB + 17);
  const server = await startImageServer(
    readFileSync(image.path),
    o.bytesPerSecond ? { bytesPerSecond: o.bytesPerSecond } : {},
  );
  cleanups.push(() => server.close());
  const cloud = await startFakeCloud();
  cleanups.push(() => cloud.close());
  const script = o.script ? writeScript(dir, 'apply.sh', o.script) : resolve('scripts/update');
  const files = writeAgentFiles(dir, { api: cloud.api, script, token: envRef('UPDRAFT_TOKEN') });
  cloud.onCheckin = () => ({ body: offer({ url: server.url, image }) });
  return {
    dir,
    cloud,
    server,
    image,
    args: onceArgs(files, join(dir, 'state')),
  };
}

const ENV = { UPDRAFT_TOKEN: 'secret-token' };

/** The config syntax that reads a token from the environment: "${NAME}". */
function envRef(name: string): string {
  return `$\{${name}}`;
}

function version(env: Env): string {
  return /"version": "([^"]+)"/.exec(readFileSync(join(env.dir, 'config/ioto.json5'), 'utf8'))![1]!;
}

function persisted(env: Env): { state: string; download?: { offset: number } } {
  try {
    return JSON.parse(readFileSync(join(env.dir, 'state/state.json'), 'utf8'));
  } catch {
    return { state: 'none' };
  }
}

describe('updraft-agent --once', () => {
  it('exits 0 with nothing to do', async () => {
    const env = await makeEnv();
    env.cloud.onCheckin = () => ({ body: {} });
    const run = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(run.code).toBe(0);
    expect(env.cloud.checkins[0]!.authorization).toBe('Bearer secret-token');
    expect(run.stderr).toMatch(/No update for dev-1/);
  });

  it('downloads, verifies, runs scripts/update with the image path, reports, exits 0', async () => {
    const env = await makeEnv();
    // The quickstart: default config/ioto.json5, config/device.json5 and state/, relative to the cwd.
    const run = await runAgent(bundle, ['--once'], { cwd: env.dir, env: ENV });
    expect(run.code, run.stderr).toBe(0);
    expect(version(env)).toBe('1.1.0');
    expect(readFileSync(join(env.dir, 'state/installed/demo-1.1.0.img')).length).toBe(env.image.size);
    expect(env.cloud.reports.map((r) => r.body)).toEqual([
      { id: 'dev-1', update: 'upd-1', success: true, status: 'applied', version: '1.1.0' },
    ]);
  });

  it('exits 1 when the checkin fails', async () => {
    const env = await makeEnv();
    env.cloud.onCheckin = () => ({ status: 401, body: 'Authentication failed' });
    const run = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/HTTP 401: Authentication failed/);
  });

  it('exits 1 when the update script fails, and keeps the old version', async () => {
    const env = await makeEnv({ script: 'exit 1' });
    const run = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(run.code).toBe(1);
    expect(version(env)).toBe('1.0.0');
    expect(env.cloud.reports[0]!.body).toMatchObject({ success: false, status: 'failed' });
  });

  it('exits 3 when the script prints "exit"; the next start confirms and exits 0', async () => {
    const env = await makeEnv({ script: `${resolve('scripts/update')} "$1"\necho exit` });
    const first = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(first.code, first.stderr).toBe(3);
    expect(env.cloud.reports).toEqual([]);
    env.cloud.onCheckin = () => ({ body: {} });
    const second = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(second.code, second.stderr).toBe(0);
    expect(env.cloud.reports[0]!.body).toMatchObject({ success: true, status: 'applied', version: '1.1.0' });
  });

  it('kills the update script and its children when it runs past update.applyTimeout', async () => {
    const env = await makeEnv({ script: 'sleep 47.25 & echo $! > "$UPDATE_STATE_DIR/child.pid"; wait' });
    writeFileSync(
      join(env.dir, 'config/ioto.json5'),
      readFileSync(join(env.dir, 'config/ioto.json5'), 'utf8').replace('"20 secs"', '"400 msecs"'),
    );
    const run = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(run.code).toBe(1);
    expect(String(env.cloud.reports[0]!.body.error)).toMatch(/timed out/);
    const child = Number(readFileSync(join(env.dir, 'state/child.pid'), 'utf8'));
    await until(() => !alive(child), 5000, 'the script child to be killed');
  });
});

describe('updraft-agent over HTTPS', () => {
  it('checks in and downloads over TLS, trusting a private CA through NODE_EXTRA_CA_CERTS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const tls = makeCertificate(dir);
    const image = makeImage(join(dir, 'image.bin'), 3 * MiB + 1);
    const server = await startImageServer(readFileSync(image.path), { tls });
    cleanups.push(() => server.close());
    const cloud = await startFakeCloud(tls);
    cleanups.push(() => cloud.close());
    expect(cloud.api).toMatch(/^https:/);
    cloud.onCheckin = () => ({ body: offer({ url: server.url, image }) });
    const files = writeAgentFiles(dir, { api: cloud.api, script: resolve('scripts/update') });
    const args = onceArgs(files, join(dir, 'state'));
    const untrusted = await runAgent(bundle, args, { cwd: dir });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/SELF_SIGNED|self.signed|unable to verify/i);
    const run = await runAgent(bundle, args, { cwd: dir, env: { NODE_EXTRA_CA_CERTS: tls.certFile } });
    expect(run.code, run.stderr).toBe(0);
    expect(cloud.reports.at(-1)!.body).toMatchObject({ success: true, version: '1.1.0' });
  });
});

describe('updraft-agent configuration errors: one line naming file and key, exit 2', () => {
  const cases: [string, (ioto: string, device: string) => void, RegExp][] = [
    [
      'version not SemVer',
      (ioto) => edit(ioto, '"version": "1.0.0"', '"version": "1.2"'),
      /ioto\.json5: version: "1\.2" is not SemVer 2\.0$/,
    ],
    [
      'bad duration',
      (ioto) => edit(ioto, '"period": "24 hrs"', '"period": "soon"'),
      /ioto\.json5: update\.period: Invalid duration for update\.period: "soon"/,
    ],
    ['missing api', (ioto) => edit(ioto, /"api": "[^"]+",/, ''), /ioto\.json5: update\.api: missing/],
    [
      'token variable unset',
      (ioto) =>
        edit(ioto, `"token": "${envRef('UPDRAFT_TOKEN')}"`, `"token": "${envRef('NO_SUCH_VARIABLE_X')}"`),
      /ioto\.json5: update\.token: environment variable NO_SUCH_VARIABLE_X is not set$/,
    ],
    ['JSON5 syntax', (ioto) => edit(ioto, '{', '{{'), /ioto\.json5: not valid JSON5: .*at 2:2/],
    [
      'bad device id',
      (_ioto, device) => edit(device, '"dev-1"', '"dev 1"'),
      /device\.json5: id: Invalid "id": use 1–128 characters/,
    ],
    [
      'missing update script',
      (ioto) => edit(ioto, /"update": "[^"]+"\n/, '"update": "/nonexistent/update"\n'),
      /ioto\.json5: scripts\.update: \/nonexistent\/update does not exist or is not executable$/,
    ],
  ];

  it.each(cases)('%s', async (_name, breakIt, message) => {
    const env = await makeEnv();
    breakIt(join(env.dir, 'config/ioto.json5'), join(env.dir, 'config/device.json5'));
    const run = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(run.code).toBe(2);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.length, run.stderr).toBe(1);
    expect(lines[0]).toMatch(message);
    expect(env.cloud.checkins).toEqual([]);
  });
});

describe('updraft-agent --state problems: one line naming --state, exit 2', () => {
  it.each([
    [
      'an existing file',
      (dir: string) => join(dir, 'config/ioto.json5'),
      /exists and is not a directory \(EEXIST\)$/,
    ],
    [
      'a path under a file',
      (dir: string) => join(dir, 'config/ioto.json5/state'),
      /a component of the path is not a directory \(ENOTDIR\)$/,
    ],
    [
      'a directory whose downloads/ is a file',
      (dir: string) => {
        mkdirSync(join(dir, 'st'));
        writeFileSync(join(dir, 'st/downloads'), '');
        return join(dir, 'st');
      },
      /downloads: exists and is not a directory \(EEXIST\)$/,
    ],
  ])('%s', async (_name, stateOf, problem) => {
    const env = await makeEnv();
    const state = stateOf(env.dir);
    const args = [...env.args.slice(0, -1), state];
    for (const mode of [['--once'], []]) {
      const run = await runAgent(bundle, [...args.filter((a) => a !== '--once'), ...mode], {
        cwd: env.dir,
        env: ENV,
      });
      expect(run.code, run.stderr).toBe(2);
      const lines = run.stderr.trimEnd().split('\n');
      expect(lines, run.stderr).toHaveLength(1);
      expect(lines[0]!.startsWith(`updraft-agent: --state ${state}: `), lines[0]).toBe(true);
      expect(lines[0]).toMatch(problem);
    }
    expect(env.cloud.checkins).toEqual([]);
  });
});

describe('updraft-agent --once stopped by a signal while the script runs', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s: the script group is ended, nothing is reported, the apply stays recorded; the rerun fails it',
    async (signal) => {
      const env = await makeEnv({
        script:
          'echo $$ > "$UPDATE_STATE_DIR/script.pid"; sleep 30 & echo $! > "$UPDATE_STATE_DIR/child.pid"; wait',
      });
      const childFile = join(env.dir, 'state/child.pid');
      const child = spawnAgent(bundle, env.args, { cwd: env.dir, env: ENV });
      const exited = waitForExit(child);
      await until(
        () => existsSync(childFile) && readFileSync(childFile, 'utf8').endsWith('\n'),
        15_000,
        'the script',
      );
      child.kill(signal);
      const run = await exited;
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/Stopping/);
      const script = Number(readFileSync(join(env.dir, 'state/script.pid'), 'utf8'));
      // Without signal handling in --once, the agent died and the script ran on, orphaned.
      expect(processAlive(script)).toBe(false);
      expect(processAlive(Number(readFileSync(childFile, 'utf8')))).toBe(false);
      expect(env.cloud.reports).toEqual([]);
      const state = persisted(env) as { state: string; apply?: { script?: { pid: number } } };
      expect(state.state).toBe('applying');
      expect(state.apply?.script?.pid).toBe(script);

      const rerun = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
      expect(rerun.code, rerun.stderr).toBe(1);
      expect(env.cloud.reports.map((r) => r.body)).toMatchObject([{ status: 'failed', version: '1.0.0' }]);
    },
  );
});

describe('updraft-agent killed with SIGKILL', () => {
  it('mid-download: the restart resumes at the persisted offset and applies the exact image', async () => {
    const env = await makeEnv({ imageSize: 8 * MiB, bytesPerSecond: 3 * MiB });
    const child = spawnAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    const exited = waitForExit(child);
    await until(() => (persisted(env).download?.offset ?? 0) > 0, 15_000, 'a download checkpoint');
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    const killedAt = persisted(env);
    expect(killedAt.state).toBe('downloading');
    const offset = killedAt.download!.offset;

    const rerun = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(env.server.ranges.at(-1)).toBe(`bytes=${offset}-`);
    expect(rerun.stderr).toMatch(new RegExp(`Resuming download of update upd-1 at byte ${offset}`));
    expect(version(env)).toBe('1.1.0');
    expect(env.cloud.reports.map((r) => r.body.status)).toEqual(['applied']);
  });

  it('mid-apply with the script still running: the restart waits for it and confirms the update', async () => {
    // The script outlives the agent and goes on printing: with its output in pipes the agent held, its
    // first line after the kill would end it with SIGPIPE, half-way through the apply.
    const env = await makeEnv({
      script: `echo $$ > "$UPDATE_STATE_DIR/script.pid"
${WAIT_FOR_GO}
echo "still installing after the agent died"
echo "a line for stderr too" >&2
exec ${resolve('scripts/update')} "$1"`,
    });
    await killAgentMidApply(env);
    expect(persisted(env).state).toBe('applying');
    expect(version(env)).toBe('1.0.0');

    env.cloud.onCheckin = () => ({ body: {} });
    const rerun = await rerunReleasingScript(env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/Update script \(process group \d+\) is still running; waiting/);
    expect(version(env)).toBe('1.1.0');
    expect(readFileSync(join(env.dir, 'state/update-script.out'), 'utf8')).toContain(
      'still installing after the agent died',
    );
    expect(readFileSync(join(env.dir, 'state/update-script.err'), 'utf8')).toBe('a line for stderr too\n');
    expect(env.cloud.reports.map((r) => r.body)).toMatchObject([
      { update: 'upd-1', success: true, status: 'applied', version: '1.1.0' },
    ]);
  });

  it('mid-apply, the script left running asks for an exit: the restart honours it, the next start confirms', async () => {
    const env = await makeEnv({
      script: `echo $$ > "$UPDATE_STATE_DIR/script.pid"
${WAIT_FOR_GO}
${resolve('scripts/update')} "$1"
echo exit`,
    });
    await killAgentMidApply(env);

    env.cloud.onCheckin = () => ({ body: {} });
    const rerun = await rerunReleasingScript(env);
    expect(rerun.code, rerun.stderr).toBe(3);
    expect(rerun.stderr).toMatch(/asks the agent to exit; the next start confirms it/);
    expect(env.cloud.reports).toEqual([]);
    const next = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(next.code, next.stderr).toBe(0);
    expect(env.cloud.reports.map((r) => r.body)).toMatchObject([
      { update: 'upd-1', success: true, status: 'applied', version: '1.1.0' },
    ]);
  });

  it('mid-apply, a script left running past its deadline is killed and its earlier "exit" ignored', async () => {
    const env = await makeEnv({
      script: `echo exit
echo $$ > "$UPDATE_STATE_DIR/script.pid"
${WAIT_FOR_GO}`,
    });
    writeFileSync(
      join(env.dir, 'config/ioto.json5'),
      readFileSync(join(env.dir, 'config/ioto.json5'), 'utf8').replace('"20 secs"', '"2 secs"'),
    );
    const script = await killAgentMidApply(env);

    env.cloud.onCheckin = () => ({ body: {} });
    const rerun = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(rerun.stderr).toMatch(/ran past update.applyTimeout; killing it/);
    expect(rerun.code, rerun.stderr).toBe(1);
    expect(processAlive(script)).toBe(false);
    expect(env.cloud.reports.map((r) => r.body)).toMatchObject([{ update: 'upd-1', status: 'failed' }]);
  });

  it('mid-apply: the restart reports the interrupted update as failed and keeps the old version', async () => {
    const env = await makeEnv({ script: 'echo $$ > "$UPDATE_STATE_DIR/script.pid"; sleep 30' });
    // The device loses power: agent and script die together.
    process.kill(-(await killAgentMidApply(env)), 'SIGKILL');
    expect(persisted(env).state).toBe('applying');

    const rerun = await runAgent(bundle, env.args, { cwd: env.dir, env: ENV });
    expect(rerun.code, rerun.stderr).toBe(1);
    expect(env.cloud.reports.map((r) => r.body)).toMatchObject([
      { update: 'upd-1', success: false, status: 'failed', version: '1.0.0' },
    ]);
    expect(String(env.cloud.reports[0]!.body.error)).toMatch(/Interrupted while applying/);
    expect(version(env)).toBe('1.0.0');
    // The same update, offered again right away, is held back rather than retried in a loop.
    expect(rerun.stderr).toMatch(/held back after 1 failure/);
    expect(persisted(env).state).toBe('idle');
  });
});

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit: ${String(from)} not found in ${file}`);
  writeFileSync(file, next);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
