/**
 * `agent-download` and `agent-rss` (DESIGN §9): download + sha256 verification of a 256 MiB image from
 * s3rver (the local cloud's S3, in this process on loopback, presigned GET URL) by the agent's
 * download code, against `curl -s URL | openssl dgst -sha256` (and `| sha256sum`, in the detail) in
 * the same run, and the peak RSS of that agent download against an idle node process.
 *
 * The agent runs as its own node process (downloadImage bundled with esbuild, as on a device, with
 * the agent's own state checkpoints), which writes the image to its state directory as the agent
 * must; the baseline pipelines only hash. The agent's figure is timed inside that process, from the
 * request to the verified digest: the agent is a daemon that starts node once (~25 ms here, against
 * under 5 ms for curl and openssl), not once per download. The pipelines are timed from spawn to
 * exit. The detail also gives the agent process from spawn to exit, and `curl | tee FILE | openssl
 * dgst`, which stores the image too. Each contender runs seven times, interleaved; the best run
 * counts, since the machine is shared and noise only ever slows a run down.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { ImageStore } from '#cli/s3.ts';
import { Presigner } from '#functions/presign.ts';
import { LOCAL_BUCKET as BUCKET, type LocalCloud, startLocalCloud } from '#local/cloud.ts';
import { type BenchRow, type BenchSuite, unmeasured } from './row.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1 << 20;
const IMAGE_BYTES = 256 * MiB;
const ROUNDS = 7;
const quiet = { info() {}, warn() {}, error() {} };
const KEY = 'images/demo/9.9.9/demo-9.9.9.bin';
const DOWNLOAD = {
  name: 'agent-download',
  unit: 'MiB/s',
  baseline: 'curl -s | openssl dgst -sha256',
} as const;
const RSS = { name: 'agent-rss', unit: 'MiB', baseline: 'idle node process' } as const;

/** The device side of the bench: the agent's downloadImage in a process of its own. */
const CHILD_SOURCE = `
import { basename, dirname } from 'node:path';
import { downloadImage } from './agent/download.ts';
import { initialState, StateStore } from './agent/state.ts';
const [url, size, file, checksum] = process.argv.slice(2);
const store = new StateStore(dirname(file));
const record = { update: 'bench', checksum, size: Number(size), file: basename(file), offset: 0 };
let checkpoints = 0;
const started = performance.now();
const result = await downloadImage({
  url,
  size: Number(size),
  file,
  offset: 0,
  stallTimeoutMs: 30000,
  onCheckpoint: (offset) => {
    checkpoints++;
    store.save({ ...initialState(), state: 'downloading', download: { ...record, offset } });
  },
});
if (result.sha256 !== checksum) {
  process.stderr.write('sha256 mismatch: ' + result.sha256 + '\\n');
  process.exit(1);
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({ seconds, checkpoints, maxRssKiB: process.resourceUsage().maxRSS }));
`;

/**
 * The children's environment, without NODE_EXTRA_CA_CERTS: this sandbox points it at the whole system
 * bundle, which node then parses at every start (~60 ms here, tripling its start-up), while a device's
 * agent has no reason to set it and the image URL here is plain http anyway.
 */
const CHILD_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'NODE_EXTRA_CA_CERTS'),
);

interface Run {
  readonly seconds: number;
  readonly stdout: string;
}

function run(command: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) resolvePromise({ seconds, stdout });
      else reject(new Error(`${command} exited with ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}

function makeImage(path: string): string {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(MiB);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < IMAGE_BYTES; done += MiB) {
      randomFillSync(chunk);
      hash.update(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Uploads as `updraft publish` does: streamed multipart through lib-storage, signed with the local credentials. */
async function upload(cloud: LocalCloud, file: string): Promise<void> {
  // The SDK warns on Node 20 about its future Node 22 requirement, into the bench's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const images = new ImageStore({
    region: cloud.file.region,
    bucket: cloud.file.bucketName,
    endpoint: cloud.file.s3Endpoint,
    credentials: { ...cloud.file.credentials },
  });
  try {
    await images.upload(KEY, createReadStream(file), { size: statSync(file).size });
  } finally {
    images.destroy();
  }
}

function digestOf(stdout: string): string {
  return /([0-9a-f]{64})/.exec(stdout)?.[1] ?? '';
}

export const suite: BenchSuite = async (): Promise<BenchRow[]> => {
  const dir = mkdtempSync(join(tmpdir(), 'updraft-bench-agent-'));
  let cloud: LocalCloud | undefined;
  try {
    const image = join(dir, 'image.bin');
    const checksum = makeImage(image);
    // The sealed embedded store of `npm start`: every image GET has its presigned signature checked.
    cloud = await startLocalCloud({ dataDir: join(dir, 'data'), port: 0, s3Port: 0, log: quiet });
    await upload(cloud, image);
    rmSync(image);
    const sealed = cloud;
    const presigner = new Presigner(
      { region: sealed.file.region, bucket: BUCKET, endpoint: sealed.s3Url, forcePathStyle: true },
      () => sealed.file.credentials,
    );
    const url = presigner.presignGet(KEY, 3600);

    const child = join(dir, 'agent-download.mjs');
    await build({
      stdin: {
        contents: CHILD_SOURCE,
        resolveDir: ROOT,
        loader: 'ts',
        sourcefile: 'bench-agent-download.ts',
      },
      absWorkingDir: ROOT,
      outfile: child,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
    });

    const best = {
      agent: Number.POSITIVE_INFINITY,
      agentProcess: Number.POSITIVE_INFINITY,
      openssl: Number.POSITIVE_INFINITY,
      sha256sum: Number.POSITIVE_INFINITY,
      tee: Number.POSITIVE_INFINITY,
    };
    let peakKiB = 0;
    let checkpoints = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const state = join(dir, `state-${round}`);
      const agent = await run(process.execPath, [
        child,
        url,
        String(IMAGE_BYTES),
        join(state, 'image'),
        checksum,
      ]);
      rmSync(state, { recursive: true, force: true });
      const inProcess = JSON.parse(agent.stdout) as {
        seconds: number;
        checkpoints: number;
        maxRssKiB: number;
      };
      checkpoints = Math.max(checkpoints, inProcess.checkpoints);
      best.agent = Math.min(best.agent, inProcess.seconds);
      best.agentProcess = Math.min(best.agentProcess, agent.seconds);
      peakKiB = Math.max(peakKiB, inProcess.maxRssKiB);

      const openssl = await run('/bin/sh', ['-c', `curl -sf '${url}' | openssl dgst -sha256`]);
      if (digestOf(openssl.stdout) !== checksum) throw new Error('curl | openssl dgst: wrong sha256');
      best.openssl = Math.min(best.openssl, openssl.seconds);

      const sha256sum = await run('/bin/sh', ['-c', `curl -sf '${url}' | sha256sum`]);
      if (digestOf(sha256sum.stdout) !== checksum) throw new Error('curl | sha256sum: wrong sha256');
      best.sha256sum = Math.min(best.sha256sum, sha256sum.seconds);

      // Like for like: the agent stores the image it verifies; this pipeline does too.
      const stored = join(dir, `tee-${round}.img`);
      const tee = await run('/bin/sh', ['-c', `curl -sf '${url}' | tee '${stored}' | openssl dgst -sha256`]);
      rmSync(stored, { force: true });
      if (digestOf(tee.stdout) !== checksum) throw new Error('curl | tee | openssl dgst: wrong sha256');
      best.tee = Math.min(best.tee, tee.seconds);
    }
    // Start-up alone, for the detail: node (as the agent's process) and an empty curl | openssl pipeline.
    // The idle node processes are also the RSS baseline: their median, as single samples vary by ~20%.
    const idleKiB: number[] = [];
    let nodeStart = Number.POSITIVE_INFINITY;
    let pipelineStart = Number.POSITIVE_INFINITY;
    for (let round = 0; round < ROUNDS; round++) {
      const idle = await run(process.execPath, [
        '-e',
        'process.stdout.write(String(process.resourceUsage().maxRSS))',
      ]);
      idleKiB.push(Number(idle.stdout));
      nodeStart = Math.min(nodeStart, idle.seconds);
      const empty = await run('/bin/sh', ['-c', 'curl -sf file:///dev/null | openssl dgst -sha256']);
      pipelineStart = Math.min(pipelineStart, empty.seconds);
    }
    idleKiB.sort((a, b) => a - b);
    const idleMiB = idleKiB[Math.floor(idleKiB.length / 2)]! / 1024;
    const rate = (seconds: number) => IMAGE_BYTES / MiB / seconds;
    const ms = (seconds: number) => `${(seconds * 1000).toFixed(0)} ms`;
    return [
      {
        ...DOWNLOAD,
        value: rate(best.agent),
        baselineValue: rate(best.openssl),
        better: 'higher',
        detail:
          `256 MiB from the sealed local store (s3rver behind its signature check), presigned GET, best of ${ROUNDS}; the agent stores the image, timed in its process from request to verified digest, ` +
          `with its state checkpoints every 2 s of transfer (at most ${checkpoints} per run here); the pipelines from spawn to exit. ` +
          `Agent process from spawn to exit ${rate(best.agentProcess).toFixed(0)} MiB/s (${(best.openssl / best.agentProcess).toFixed(2)}x; ` +
          `start-up alone: node ${ms(nodeStart)}, curl | openssl ${ms(pipelineStart)}; children run without this sandbox's NODE_EXTRA_CA_CERTS). ` +
          `curl | sha256sum ${rate(best.sha256sum).toFixed(0)} MiB/s. ` +
          `Storing the image too, curl | tee FILE | openssl dgst ${rate(best.tee).toFixed(0)} MiB/s ` +
          `(agent process from spawn to exit ${(best.tee / best.agentProcess).toFixed(2)}x of that)`,
      },
      {
        ...RSS,
        value: peakKiB / 1024,
        baselineValue: idleMiB,
        better: 'lower',
        detail: `peak RSS (maxRSS) of the agent download processes vs \`node -e\` doing nothing (median of ${ROUNDS})`,
      },
    ];
  } catch (err) {
    const error = (err as Error).message;
    return [
      unmeasured(DOWNLOAD.name, DOWNLOAD.unit, DOWNLOAD.baseline, 'higher', error),
      unmeasured(RSS.name, RSS.unit, RSS.baseline, 'lower', error),
    ];
  } finally {
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};
