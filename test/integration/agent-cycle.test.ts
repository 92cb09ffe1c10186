/**
 * The agent's state sequences under injected faults, through real components: an HTTP cloud, an image
 * server, a fault proxy and real scripts (the repository's scripts/update by default).
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions, type CycleOutcome } from '#agent/agent.ts';
import { loadAgentConfig } from '#agent/config.ts';
import { silentLogger } from '#agent/log.ts';
import { identify } from '#agent/proc.ts';
import { type AgentStateName, initialState } from '#agent/state.ts';
import { generateKeyPair, signManifest } from '#core/manifest.ts';
import {
  type CloudAnswer,
  closedPort,
  type FakeCloud,
  type Fault,
  type FaultProxy,
  type ImageServer,
  type ImageServerOptions,
  makeImage,
  offer,
  processAlive,
  s3ErrorBody,
  startFakeCloud,
  startFaultProxy,
  startImageServer,
  type TestImage,
  until,
  writeAgentFiles,
  writeScript,
} from './agent-fixtures.ts';

const MiB = 1 << 20;
const DEFAULT_SCRIPT = resolve('scripts/update');

interface Env {
  readonly dir: string;
  readonly stateDir: string;
  readonly cloud: FakeCloud;
  readonly server: ImageServer;
  readonly proxy?: FaultProxy;
  readonly image: TestImage;
  /** The URL offered: through the proxy when there is one. */
  readonly url: string;
  readonly files: { ioto: string; device: string };
}

interface EnvOptions {
  readonly imageSize?: number;
  /** Bytes the server sends beyond the image (an image larger than offered). */
  readonly extraBytes?: number;
  readonly faults?: readonly Fault[];
  readonly server?: ImageServerOptions;
  /** Body of a /bin/sh apply script; default the repository's scripts/update. */
  readonly script?: string;
  readonly keys?: readonly string[];
  readonly version?: string;
  readonly applyTimeout?: string;
  readonly period?: string;
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function makeEnv(o: EnvOptions = {}): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-cycle-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const image = makeImage(join(dir, 'image.bin'), o.imageSize ?? 2 * MiB + 333);
  let data = readFileSync(image.path);
  if (o.extraBytes) data = Buffer.concat([data, Buffer.alloc(o.extraBytes, 7)]);
  const server = await startImageServer(data, o.server);
  cleanups.push(() => server.close());
  const cloud = await startFakeCloud();
  cleanups.push(() => cloud.close());
  let proxy: FaultProxy | undefined;
  if (o.faults) {
    proxy = await startFaultProxy(server.url, o.faults);
    cleanups.push(() => proxy!.close());
  }
  const script = o.script === undefined ? DEFAULT_SCRIPT : writeScript(dir, 'apply.sh', o.script);
  const files = writeAgentFiles(dir, {
    api: cloud.api,
    script,
    ...(o.keys ? { keys: o.keys } : {}),
    ...(o.version ? { version: o.version } : {}),
    applyTimeout: o.applyTimeout ?? '20 secs',
    stallTimeout: '2 secs',
    ...(o.period ? { period: o.period } : {}),
  });
  const url = proxy ? proxy.rewrite(server.url) : server.url;
  return { dir, stateDir: join(dir, 'state'), cloud, server, image, url, files, ...(proxy ? { proxy } : {}) };
}

function newAgent(env: Env, extra: Partial<AgentOptions> = {}): { agent: Agent; states: AgentStateName[] } {
  const agent = new Agent({
    config: loadAgentConfig(env.files),
    stateDir: env.stateDir,
    downloadRetry: { baseDelayMs: 10 },
    ...extra,
  });
  const states: AgentStateName[] = [];
  agent.on('state', (change) => states.push(change.to));
  cleanups.push(() => agent.stop());
  return { agent, states };
}

function runningVersion(env: Env): string {
  return /"version": "([^"]+)"/.exec(readFileSync(env.files.ioto, 'utf8'))![1]!;
}

const FULL = ['checking', 'downloading', 'verifying', 'applying', 'pending-confirm', 'reporting', 'idle'];

interface Case {
  readonly name: string;
  readonly env?: EnvOptions;
  /** Sets up the cloud's answers; default offers the image as update upd-1, version 1.1.0. */
  readonly cloud?: (env: Env) => void;
  readonly states: readonly string[];
  readonly outcome: CycleOutcome;
  readonly report?: { readonly status: string; readonly success: boolean; readonly error?: RegExp };
  readonly versionAfter: string;
}

const offerImage = (env: Env, extra: Partial<Parameters<typeof offer>[0]> = {}): void => {
  env.cloud.onCheckin = () => ({ body: offer({ url: env.url, image: env.image, ...extra }) });
};

const cases: readonly Case[] = [
  {
    name: 'no update',
    cloud: (env) => {
      env.cloud.onCheckin = () => ({ body: {} });
    },
    states: ['checking', 'idle'],
    outcome: 'no-update',
    versionAfter: '1.0.0',
  },
  {
    name: 'checkin answers 500',
    cloud: (env) => {
      env.cloud.onCheckin = (): CloudAnswer => ({ status: 500, body: 'Internal error' });
    },
    states: ['checking', 'idle'],
    outcome: 'error',
    versionAfter: '1.0.0',
  },
  {
    name: 'update applied by scripts/update',
    states: FULL,
    outcome: 'applied',
    report: { status: 'applied', success: true },
    versionAfter: '1.1.0',
  },
  {
    name: 'connections cut at 5 offsets: resumed',
    env: { faults: [1, 100_000, MiB, MiB + 1, 2 * MiB].map((at) => ({ kind: 'cut', at }) as const) },
    states: FULL,
    outcome: 'applied',
    report: { status: 'applied', success: true },
    versionAfter: '1.1.0',
  },
  {
    name: 'stalled transfer: cut after the stall timeout, resumed',
    env: { faults: [{ kind: 'stall', at: MiB }] },
    states: FULL,
    outcome: 'applied',
    report: { status: 'applied', success: true },
    versionAfter: '1.1.0',
  },
  {
    name: 'corrupted byte: rejected, nothing applied',
    env: { faults: [{ kind: 'corrupt', at: 1234 }] },
    states: ['checking', 'downloading', 'verifying', 'reporting', 'idle'],
    outcome: 'rejected',
    report: { status: 'rejected', success: false, error: /sha256 .* does not match/ },
    versionAfter: '1.0.0',
  },
  {
    name: 'image larger than offered: refused',
    env: { extraBytes: 10 },
    states: ['checking', 'downloading', 'reporting', 'idle'],
    outcome: 'failed',
    report: { status: 'failed', success: false, error: /more than the offered size/ },
    versionAfter: '1.0.0',
  },
  {
    name: 'image URL gone (404): partial kept for the next checkin',
    cloud: (env) => offerImage(env, { url: `${env.cloud.api}/expired` }),
    states: ['checking', 'downloading', 'idle'],
    outcome: 'error',
    versionAfter: '1.0.0',
  },
  {
    name: 'script exits 1: failed, old version kept',
    env: { script: 'echo "flash write failed" >&2; exit 1' },
    states: ['checking', 'downloading', 'verifying', 'applying', 'reporting', 'idle'],
    outcome: 'failed',
    report: { status: 'failed', success: false, error: /exited with code 1: flash write failed/ },
    versionAfter: '1.0.0',
  },
  {
    name: 'script times out: killed, failed, old version kept',
    env: { script: 'sleep 30', applyTimeout: '300 msecs' },
    states: ['checking', 'downloading', 'verifying', 'applying', 'reporting', 'idle'],
    outcome: 'failed',
    report: { status: 'failed', success: false, error: /timed out after 0.3 s/ },
    versionAfter: '1.0.0',
  },
  {
    name: 'script exits 0 without installing the version: not confirmed',
    env: { script: 'exit 0' },
    states: FULL,
    outcome: 'failed',
    report: { status: 'failed', success: false, error: /running version is 1.0.0, expected 1.1.0/ },
    versionAfter: '1.0.0',
  },
  {
    name: 'downgrade without a signed manifest: rejected before download',
    env: { version: '2.0.0' },
    states: ['checking', 'reporting', 'idle'],
    outcome: 'rejected',
    report: { status: 'rejected', success: false, error: /not greater than the running 2.0.0/ },
    versionAfter: '2.0.0',
  },
];

describe('agent cycle: state sequences under faults', () => {
  it.each(cases)('$name', async (c) => {
    const env = await makeEnv(c.env);
    (c.cloud ?? offerImage)(env);
    const { agent, states } = newAgent(env);
    const result = await agent.checkin();
    expect(states).toEqual(c.states);
    expect(result.outcome).toBe(c.outcome);
    expect(agent.stateName).toBe('idle');
    expect(env.cloud.reports.length).toBe(c.report ? 1 : 0);
    if (c.report) {
      const sent = env.cloud.reports[0]!;
      expect(sent.body).toMatchObject({
        id: 'dev-1',
        update: 'upd-1',
        status: c.report.status,
        success: c.report.success,
      });
      if (c.report.error) expect(String(sent.body.error)).toMatch(c.report.error);
      expect(sent.authorization).toBe('Bearer test-token');
    }
    expect(runningVersion(env)).toBe(c.versionAfter);
    // Nothing left behind: the image is deleted whatever happened, except a partial kept for resuming.
    const left = readdirSync(join(env.stateDir, 'downloads'));
    expect(left.length).toBe(c.outcome === 'error' && c.states.includes('downloading') ? 1 : 0);
  });
});

describe('agent cycle: protocol and recovery', () => {
  it('sends device.json5 properties with id, product and the running version', async () => {
    const env = await makeEnv();
    const { agent } = newAgent(env);
    await agent.checkin();
    expect(env.cloud.checkins[0]!.body).toEqual({
      id: 'dev-1',
      product: 'demo',
      region: 'eu',
      version: '1.0.0',
    });
  });

  it('runs the script with the absolute image path and the update environment', async () => {
    const env = await makeEnv({
      script: `printf '%s\\n' "$1" "$UPDATE_VERSION" "$UPDATE_ID" > "$UPDATE_STATE_DIR/args"
sed -i 's/"version": "1.0.0"/"version": "'"$UPDATE_VERSION"'"/' "$UPDATE_CONFIG"`,
    });
    offerImage(env);
    const { agent } = newAgent(env);
    expect((await agent.checkin()).outcome).toBe('applied');
    const [path, version, id] = readFileSync(join(env.stateDir, 'args'), 'utf8').trim().split('\n');
    expect(path).toBe(join(env.stateDir, 'downloads', 'upd-1.img'));
    expect([version, id]).toEqual(['1.1.0', 'upd-1']);
  });

  it('paces the image download by update.throttle from ioto.json5', async () => {
    const env = await makeEnv({ imageSize: 320 * 1024 });
    const [comment, ...json] = readFileSync(env.files.ioto, 'utf8').split('\n');
    const config = JSON.parse(json.join('\n')) as { update: Record<string, unknown> };
    config.update.throttle = 150;
    writeFileSync(env.files.ioto, `${comment}\n${JSON.stringify(config, null, 2)}\n`);
    offerImage(env);
    const { agent } = newAgent(env);
    const started = performance.now();
    expect((await agent.checkin()).outcome).toBe('applied');
    // 320 KiB in reads of at most 64 KiB: at least 5 reads, a pause of 150 ms after each but the last.
    expect(performance.now() - started).toBeGreaterThanOrEqual(4 * 150);
  });

  it('honours Retry-After of a 503 and the server nextCheckin', async () => {
    const env = await makeEnv();
    env.cloud.onCheckin = () => ({ status: 503, body: 'Busy', headers: { 'retry-after': '600' } });
    const now = 1_700_000_000_000;
    const { agent } = newAgent(env, { now: () => now, random: () => 0 });
    expect((await agent.checkin()).error).toMatch(/HTTP 503: Busy/);
    expect(agent.nextCheckinAt).toBe(now + 600_000);
    env.cloud.onCheckin = () => ({ body: { nextCheckin: 90 } });
    expect((await agent.checkin()).outcome).toBe('no-update');
    expect(agent.nextCheckinAt).toBe(now + 90_000);
  });

  it('retries a failed download on the backoff, not a period later, and resumes it', async () => {
    const env = await makeEnv();
    offerImage(env, { url: `${env.cloud.api}/expired` });
    const now = 1_700_000_000_000;
    const { agent } = newAgent(env, { now: () => now, random: () => 0 });
    expect((await agent.checkin()).error).toMatch(/Image URL refused with HTTP 404/);
    expect(agent.nextCheckinAt).toBe(now + 15_000);
    offerImage(env);
    expect((await agent.checkin()).outcome).toBe('applied');
  });

  it('keeps a report the cloud did not take and sends it first on the next cycle', async () => {
    const env = await makeEnv();
    offerImage(env);
    env.cloud.onReport = () => ({ status: 503, body: 'Busy' });
    const { agent, states } = newAgent(env);
    const first = await agent.checkin();
    expect(first.outcome).toBe('applied');
    expect(first.error).toBe('Report not delivered');
    expect(agent.stateName).toBe('reporting');
    env.cloud.onReport = () => ({ body: {} });
    env.cloud.onCheckin = () => ({ body: {} });
    states.length = 0;
    const second = await agent.checkin();
    expect(states).toEqual(['idle', 'checking', 'idle']);
    expect(second.outcome).toBe('no-update');
    expect(env.cloud.reports.map((r) => r.body.status)).toEqual(['applied', 'applied']);
  });

  it('drops a report the cloud refuses for good (404 unknown update)', async () => {
    const env = await makeEnv({ script: 'exit 1' });
    offerImage(env);
    env.cloud.onReport = () => ({ status: 404, body: 'Unknown update' });
    const { agent } = newAgent(env);
    await agent.checkin();
    expect(agent.stateName).toBe('idle');
  });

  it('backs off an update id that keeps failing and forgets it when another update is offered', async () => {
    const env = await makeEnv({ script: 'echo no >&2; exit 1' });
    offerImage(env);
    let now = 1_700_000_000_000;
    const { agent } = newAgent(env, {
      now: () => now,
      updateBackoff: { retryDelays: [60, 600], maxFailures: 3 },
    });
    expect((await agent.checkin()).outcome).toBe('failed');
    expect((await agent.checkin()).outcome).toBe('skipped');
    now += 61_000;
    expect((await agent.checkin()).outcome).toBe('failed');
    now += 599_000;
    expect((await agent.checkin()).outcome).toBe('skipped');
    now += 2_000;
    expect((await agent.checkin()).outcome).toBe('failed');
    now += 365 * 86_400_000;
    expect((await agent.checkin()).outcome).toBe('skipped');
    expect(env.cloud.reports.length).toBe(3);
    expect(env.server.ranges.length).toBe(3);
    offerImage(env, { update: 'upd-2', version: '1.2.0' });
    expect((await agent.checkin()).outcome).toBe('failed');
    expect(env.cloud.reports.at(-1)!.body.update).toBe('upd-2');
  });

  it('verifies signatures with any of several keys and allows a signed downgrade', async () => {
    const oldKey = generateKeyPair();
    const newKey = generateKeyPair();
    const env = await makeEnv({ keys: [oldKey.publicKey, newKey.publicKey], version: '2.0.0' });
    const sign = (allowDowngrade: boolean) =>
      signManifest(
        { product: 'demo', version: '1.1.0', sha256: env.image.sha256, size: env.image.size, allowDowngrade },
        newKey.privateKeyPem,
      );
    offerImage(env, { signature: sign(false) });
    const { agent } = newAgent(env);
    const refused = await agent.checkin();
    expect(refused.outcome).toBe('rejected');
    expect(refused.error).toMatch(/does not allow a downgrade/);
    offerImage(env, { update: 'upd-2', signature: sign(true) });
    expect((await agent.checkin()).outcome).toBe('applied');
    expect(runningVersion(env)).toBe('1.1.0');
  });

  it('rejects an unsigned or wrongly signed offer when keys are configured, without downloading', async () => {
    const key = generateKeyPair();
    const other = generateKeyPair();
    const env = await makeEnv({ keys: [key.publicKey] });
    offerImage(env);
    const { agent } = newAgent(env);
    expect((await agent.checkin()).error).toMatch(/not signed/);
    const forged = signManifest(
      {
        product: 'demo',
        version: '1.1.0',
        sha256: env.image.sha256,
        size: env.image.size,
        allowDowngrade: false,
      },
      other.privateKeyPem,
    );
    offerImage(env, { update: 'upd-2', signature: forged });
    expect((await agent.checkin()).error).toMatch(/does not verify/);
    expect(env.server.ranges).toEqual([]);
  });

  describe('device:update listeners', () => {
    it('a listener that applies the update replaces the script; the running version confirms it', async () => {
      const env = await makeEnv();
      writeAgentFiles(env.dir, { api: env.cloud.api });
      let running = '1.0.0';
      const { agent } = newAgent(env, { runningVersion: () => running });
      offerImage(env);
      const seen: string[] = [];
      agent.on('device:update', async ({ path, version, update }) => {
        seen.push(readFileSync(path).length === env.image.size ? `${update} ${version}` : 'bad image');
        running = version;
        return { applied: true };
      });
      expect((await agent.checkin()).outcome).toBe('applied');
      expect(seen).toEqual(['upd-1 1.1.0']);
      expect(env.cloud.reports[0]!.body).toMatchObject({ status: 'applied', version: '1.1.0' });
    });

    it.each([
      ['returns applied: false', () => ({ applied: false, error: 'battery low' }), /battery low/],
      [
        'throws',
        () => {
          throw new Error('no space on partition B');
        },
        /listener failed: no space on partition B/,
      ],
    ])('a listener that %s fails the update and the script does not run', async (_name, listener, error) => {
      const env = await makeEnv({ script: 'touch "$UPDATE_STATE_DIR/ran"' });
      offerImage(env);
      const { agent } = newAgent(env);
      agent.on('device:update', listener);
      const result = await agent.checkin();
      expect(result.outcome).toBe('failed');
      expect(result.error).toMatch(error);
      expect(existsSync(join(env.stateDir, 'ran'))).toBe(false);
    });

    it('with no listener that applies and no script, the update fails', async () => {
      const env = await makeEnv();
      writeAgentFiles(env.dir, { api: env.cloud.api });
      offerImage(env);
      const { agent } = newAgent(env);
      agent.on('device:update', () => undefined);
      expect((await agent.checkin()).error).toMatch(/Nothing applied the update/);
    });
  });

  it('script prints "exit": the agent stops unconfirmed and the next start confirms', async () => {
    const env = await makeEnv({
      script: `${DEFAULT_SCRIPT} "$1"
echo exit`,
    });
    offerImage(env);
    const first = newAgent(env);
    expect((await first.agent.checkin()).outcome).toBe('exit');
    expect(first.agent.stateName).toBe('pending-confirm');
    expect(env.cloud.reports).toEqual([]);
    await first.agent.stop();
    env.cloud.onCheckin = () => ({ body: {} });
    const second = newAgent(env);
    const result = await second.agent.checkin();
    expect(second.states).toEqual(['reporting', 'idle', 'checking', 'idle']);
    expect(result.reports).toMatchObject([{ status: 'applied', success: true, version: '1.1.0' }]);
    expect(env.cloud.checkins.at(-1)!.body.version).toBe('1.1.0');
  });

  it('script prints "restart": the configuration is re-read and the update confirmed at once', async () => {
    const env = await makeEnv({
      script: `${DEFAULT_SCRIPT} "$1"
echo restart`,
    });
    offerImage(env);
    const { agent } = newAgent(env);
    expect((await agent.checkin()).outcome).toBe('applied');
    env.cloud.onCheckin = () => ({ body: {} });
    await agent.checkin();
    expect(env.cloud.checkins.at(-1)!.body.version).toBe('1.1.0');
  });

  it('stop() mid-download keeps the partial file; a new agent resumes it with Range', async () => {
    const env = await makeEnv({ imageSize: 6 * MiB, server: { bytesPerSecond: 4 * MiB } });
    offerImage(env);
    const first = newAgent(env);
    let received = 0;
    first.agent.on('progress', (p) => {
      received = p.received;
    });
    const run = first.agent.checkin();
    await until(() => received >= 3 * MiB, 10_000, '3 MiB downloaded');
    await first.agent.stop();
    expect((await run).outcome).toBe('error');
    expect(first.agent.stateName).toBe('idle');
    const persisted = JSON.parse(readFileSync(join(env.stateDir, 'state.json'), 'utf8')) as {
      download: { offset: number };
    };
    expect(persisted.download.offset).toBeGreaterThan(0);
    const second = newAgent(env);
    expect((await second.agent.checkin()).outcome).toBe('applied');
    expect(env.server.ranges.at(-1)).toBe(`bytes=${persisted.download.offset}-`);
  });

  it('start() checks in on the schedule until stop()', async () => {
    const env = await makeEnv({ period: '1 sec' });
    env.cloud.onCheckin = () => ({ body: {} });
    // Each reading of this clock is an hour after the last: every checkin is due as soon as the one
    // before it is done, so the schedule runs on the clock alone with no timer to wait out.
    let clock = Date.now();
    const { agent, states } = newAgent(env, { now: () => (clock += 3_600_000) });
    // Stopped between cycles, when the third is done: no request of the loop is left in flight.
    let stopped: Promise<void> | undefined;
    agent.on('state', (change) => {
      if (change.to === 'idle' && env.cloud.checkins.length === 3) stopped ??= agent.stop();
    });
    agent.start();
    await until(() => stopped !== undefined, 5000, 'three checkins');
    await stopped;
    expect(env.cloud.checkins).toHaveLength(3);
    const seen = states.length;

    // A loop that outlived stop() would be due again at once and check in beside this one cycle.
    expect((await agent.checkin()).outcome).toBe('no-update');
    expect(env.cloud.checkins).toHaveLength(4);
    expect(states.slice(seen)).toEqual(['checking', 'idle']);
  });

  it('start() holds a tiny server nextCheckin to the 60 s floor', async () => {
    const env = await makeEnv({ period: '1 sec' });
    env.cloud.onCheckin = () => ({ body: { nextCheckin: 0.05 } });
    // The schedule logs each wait it starts: the event that shows what it decided after the checkin.
    const waits: number[] = [];
    const log = {
      ...silentLogger,
      debug: (message: string) => {
        const wait = /^Next checkin in (\d+) s$/.exec(message);
        if (wait) waits.push(Number(wait[1]));
      },
    };
    const { agent } = newAgent(env, { log });
    agent.start();
    await until(() => waits.length >= 1, 5000, 'the schedule to start its wait after the first checkin');
    await agent.stop();
    // Before the floor, the loop waited 0 s and checked in again (about 30 times in 1.5 s).
    expect(waits).toEqual([60]);
    expect(env.cloud.checkins.length).toBe(1);
    expect(agent.nextCheckinAt - Date.now()).toBeGreaterThan(55_000);
  });

  describe('a download that keeps failing', () => {
    /** Runs cycles on a fake clock, each at the time the agent scheduled; returns outcomes and delays. */
    async function cycles(agent: Agent, clock: { now: number }, count: number) {
      const outcomes: string[] = [];
      const delays: number[] = [];
      for (let i = 0; i < count; i++) {
        if (i > 0) clock.now = Math.max(clock.now, agent.nextCheckinAt);
        const result = await agent.checkin();
        outcomes.push(result.outcome);
        delays.push(agent.nextCheckinAt - clock.now);
      }
      return { outcomes, delays };
    }

    it('403 with an S3 error body: backs off per update, fails and reports after 5 cycles', async () => {
      const env = await makeEnv({
        server: { refuse: { status: 403, body: s3ErrorBody('AccessDenied', 'Request has expired') } },
      });
      offerImage(env);
      const clock = { now: 1_700_000_000_000 };
      const { agent } = newAgent(env, { now: () => clock.now, random: () => 0 });
      const { outcomes, delays } = await cycles(agent, clock, 5);
      // Every checkin got an answer, which used to reset the backoff and retry every 15 s forever.
      expect(outcomes).toEqual(['error', 'error', 'error', 'error', 'failed']);
      expect(delays.slice(0, 4)).toEqual([15_000, 30_000, 60_000, 120_000]);
      // Then the update id is backed off like any failed update.
      expect((await agent.checkin()).outcome).toBe('skipped');
      expect(env.cloud.checkins.length).toBe(6);
      expect(env.server.ranges.length).toBe(5);
      expect(env.cloud.reports.map((r) => r.body)).toEqual([
        {
          id: 'dev-1',
          update: 'upd-1',
          success: false,
          status: 'failed',
          version: '1.0.0',
          error: `Download failed 5 times in a row: Image URL refused with HTTP 403 AccessDenied by ${new URL(env.server.url).origin}`,
        },
      ]);
      expect(readdirSync(join(env.stateDir, 'downloads'))).toEqual([]);
    });

    it('connection refused: fails and reports after 5 cycles, naming the origin', async () => {
      const env = await makeEnv();
      const port = await closedPort();
      offerImage(env, { url: `http://127.0.0.1:${port}/image.bin?X-Amz-Signature=secret` });
      const clock = { now: 1_700_000_000_000 };
      const { agent } = newAgent(env, {
        now: () => clock.now,
        random: () => 0,
        downloadRetry: { baseDelayMs: 1, maxWithoutProgress: 2 },
      });
      const { outcomes } = await cycles(agent, clock, 5);
      expect(outcomes).toEqual(['error', 'error', 'error', 'error', 'failed']);
      const error = String(env.cloud.reports[0]?.body.error);
      expect(error).toBe(
        `Download failed 5 times in a row: Download failed after 2 attempts: Image download from http://127.0.0.1:${port}: ECONNREFUSED`,
      );
    });

    it('a cycle that adds bytes starts the count over', async () => {
      const env = await makeEnv({
        imageSize: 3 * MiB,
        faults: [MiB, 2 * MiB].map((at) => ({ kind: 'stall', at }) as const),
      });
      offerImage(env);
      const clock = { now: 1_700_000_000_000 };
      // One attempt per cycle: each stall fails the cycle, after some progress.
      const { agent } = newAgent(env, {
        now: () => clock.now,
        random: () => 0,
        downloadRetry: { maxAttempts: 1 },
      });
      const { outcomes, delays } = await cycles(agent, clock, 3);
      expect(outcomes).toEqual(['error', 'error', 'applied']);
      expect(delays.slice(0, 2)).toEqual([15_000, 15_000]);
    });
  });

  it('stop() while the script runs ends its process group; the next start confirms or fails it', async () => {
    const env = await makeEnv({
      script:
        'echo $$ > "$UPDATE_STATE_DIR/script.pid"; sleep 30 & echo $! > "$UPDATE_STATE_DIR/child.pid"; wait',
    });
    offerImage(env);
    const first = newAgent(env);
    const run = first.agent.checkin();
    const child = join(env.stateDir, 'child.pid');
    await until(() => existsSync(child) && readFileSync(child, 'utf8').endsWith('\n'), 10_000, 'the script');
    await first.agent.stop();
    const stopped = await run;
    expect(stopped).toMatchObject({ outcome: 'error', error: 'Agent stopped while applying' });
    const script = Number(readFileSync(join(env.stateDir, 'script.pid'), 'utf8'));
    expect(processAlive(script)).toBe(false);
    expect(processAlive(Number(readFileSync(child, 'utf8')))).toBe(false);
    // No false failure: nothing reported, the interrupted apply is on disk with its process group.
    expect(env.cloud.reports).toEqual([]);
    const persisted = JSON.parse(readFileSync(join(env.stateDir, 'state.json'), 'utf8'));
    expect(persisted.state).toBe('applying');
    expect(persisted.apply.script.pid).toBe(script);

    env.cloud.onCheckin = () => ({ body: {} });
    const second = newAgent(env);
    const result = await second.agent.checkin();
    expect(result.reports).toMatchObject([{ status: 'failed', success: false }]);
    expect(result.reports[0]!.error).toMatch(/Interrupted while applying; the running version is 1.0.0/);
    expect(readdirSync(join(env.stateDir, 'downloads'))).toEqual([]);
  });

  it('a restart waits for the script a killed agent left running, then confirms it', async () => {
    const env = await makeEnv();
    offerImage(env);
    // What a killed agent leaves: the state `applying`, and the script still at work in its own group.
    const image = join(env.stateDir, 'downloads', 'upd-1.img');
    mkdirSync(join(env.stateDir, 'downloads'), { recursive: true });
    copyFileSync(env.image.path, image);
    const script = spawn('/bin/sh', ['-c', `sleep 1; exec ${DEFAULT_SCRIPT} "$0" >/dev/null`, image], {
      detached: true,
      stdio: 'ignore',
      env: {
        ...process.env,
        UPDATE_VERSION: '1.1.0',
        UPDATE_STATE_DIR: env.stateDir,
        UPDATE_CONFIG: env.files.ioto,
      },
    });
    const exited = new Promise((resolve) => script.on('exit', resolve));
    const download = { update: 'upd-1', checksum: env.image.sha256, size: env.image.size, file: 'upd-1.img' };
    writeFileSync(
      join(env.stateDir, 'state.json'),
      JSON.stringify({
        ...initialState(),
        state: 'applying',
        download: { ...download, offset: env.image.size },
        apply: {
          update: 'upd-1',
          version: '1.1.0',
          from: '1.0.0',
          script: { ...identify(script.pid!), startedAt: Date.now() },
        },
      }),
    );
    env.cloud.onCheckin = () => ({ body: {} });
    const { agent } = newAgent(env);
    const result = await agent.checkin();
    await exited;
    // Confirming at once would have read 1.0.0 and reported a failure the script was about to undo.
    expect(result.reports).toMatchObject([{ status: 'applied', success: true, version: '1.1.0' }]);
    expect(runningVersion(env)).toBe('1.1.0');
  });
});
