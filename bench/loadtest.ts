/**
 * `npm run load [-- --devices N --seconds S --concurrency C]`: N simulated devices, each with its
 * own id and properties, check in against a local cloud (started here as its own process) for S
 * seconds while percentage, limit and rate rollouts are active. Reports checkins/s, p50/p99,
 * errors (must be 0), grants against the configured limits (never exceeded) and the server's RSS
 * over the run. Exits 1 when a limit was exceeded or any request failed.
 *
 * `--lambda [--rate R --containers C --rollout rated|full|limited]`: instead, R × S checkins (default
 * 1,160/s, 100M devices a day) through C in-process Lambda-like containers that flush after every
 * request (bench/lambda-sim.ts), with `rated` (default) a rate-limited rollout deferring most
 * devices, with `full` a rollout to every device with no limit, each granted device reporting at
 * once, with `limited` the same under a limit of 250 devices (its starts on the update item); prints writes per checkin and the top keys by writes per (simulated) second. Exits 1 when
 * any key takes more than 300 writes/s.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inPercentage } from '#core/rollout.ts';
import { readDeviceCounts } from '#functions/aggregates.ts';
import { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { readUpdate } from '#functions/update-counters.ts';
import type { LocalCloudFile } from '#local/cloud-file.ts';
import { seedUpdate } from '#test/support/cloud.ts';
import { cloudFileOf, spawnLocalCloud } from '#test/support/local-process.ts';
import { simulateLambda, writesPerPath } from './lambda-sim.ts';
import { runLoad } from './load.ts';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
    lambda: { type: 'boolean', default: false },
    rate: { type: 'string', default: '1160' },
    containers: { type: 'string', default: '24' },
    rollout: { type: 'string', default: 'rated' },
  },
});
const ROLLOUTS = ['rated', 'full', 'limited'];
if (!ROLLOUTS.includes(values.rollout)) {
  console.error(`load: invalid --rollout ${values.rollout}: use rated, full or limited`);
  process.exit(1);
}
const HOT_KEY_WRITES_PER_SECOND = 300;
const devices = Number(values.devices);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rate = Number(values.rate);
const containers = Number(values.containers);
for (const [flag, n] of [
  ['--devices', devices],
  ['--seconds', seconds],
  ['--concurrency', concurrency],
  ['--rate', rate],
  ['--containers', containers],
] as const) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`load: invalid ${flag}: use a positive whole number`);
    process.exit(1);
  }
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** CPU seconds the process used (user + system, all its threads): utime and stime of /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

const dataDir = mkdtempSync(join(tmpdir(), 'updraft-load-'));
const server = spawnLocalCloud(dataDir, ['ignore', 'ignore', 'inherit']);
try {
  const file = await cloudFileOf(dataDir, server);
  const token = readFileSync(join(dataDir, 'dev-token'), 'utf8').trim();
  const table = new Table({ ...file, endpoint: file.dynamoEndpoint });
  const cloud = { s3Url: file.s3Endpoint, table, dataDir };
  if (values.lambda) {
    await lambdaMode(cloud, file, token);
    // The embedded store sweeps transaction marks 1 s after commits: let them land before stopping.
    await new Promise((r) => setTimeout(r, 1500));
    await stopServer();
    process.exit(process.exitCode ?? 0);
  }
  const limits = {
    eu: await seedUpdate(cloud, { version: '2.0.0', policy: 'region == "eu"', percentage: 20 }),
    limited: await seedUpdate(cloud, { version: '1.9.0', policy: 'hw.rev >= 2', limit: 500 }),
    rated: await seedUpdate(cloud, { version: '1.8.0', rate: 50, period: 5 }),
  };
  const regions = ['eu', 'us', 'ap', 'sa'];
  const body = (i: number) => {
    const n = i % devices;
    return JSON.stringify({
      id: `load-${n}`,
      product: 'demo',
      version: '1.0.0',
      region: regions[n % regions.length],
      hw: { rev: String(n % 4) },
      memory: 128 * (1 + (n % 8)),
    });
  };

  const rssBefore = rssMiB(server.pid!);
  const cpuBefore = cpuSeconds(server.pid!);
  const [loadAverage = 0] = loadavg();
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rssMiB(server.pid!)), 1000);
  const result = await runLoad({
    url: `${file.apiUrl}/tok/provision/update`,
    body,
    headers: { authorization: `Bearer ${token}` },
    concurrency,
    durationMs: seconds * 1000,
  });
  clearInterval(sampler);
  const serverCpu = cpuSeconds(server.pid!) - cpuBefore;
  await new Promise((r) => setTimeout(r, 2500)); // let metrics flush
  const rssAfter = rssMiB(server.pid!);

  const checks: { what: string; ok: boolean; detail: string }[] = [];
  const counters = async (u: { product: string; id: string }) =>
    (await readUpdate(table, u.product, u.id))!.counters;
  const eu = await counters(limits.eu);
  const euEligible = Array.from({ length: devices }, (_, n) => n).filter(
    (n) => regions[n % regions.length] === 'eu' && inPercentage(limits.eu.id, `load-${n}`, 20),
  ).length;
  checks.push({
    what: 'percentage 20% of eu',
    ok: eu.started <= euEligible,
    detail: `${eu.started} granted of ${euEligible} eligible`,
  });
  const limited = await counters(limits.limited);
  checks.push({ what: 'limit 500', ok: limited.started <= 500, detail: `${limited.started} granted` });
  const windows = await table.query(`R#${limits.rated.id}`, undefined, true);
  const fullest = Math.max(0, ...windows.map((w) => Number(w.n)));
  const rated = await counters(limits.rated);
  checks.push({
    what: 'rate 50 per 5 s',
    ok: fullest <= 50 && rated.started <= windows.length * 50,
    detail: `${rated.started} granted over ${windows.length} windows, fullest ${fullest}`,
  });
  const grantsEu = (await table.query(keys.grantsOf(limits.eu.id).pk, undefined, true)).length;
  checks.push({
    what: 'grants recorded = counted',
    ok: grantsEu === eu.started,
    detail: `${grantsEu} grant items, counter ${eu.started}`,
  });
  const registry = await table.query(keys.devicesOf('demo').pk, undefined, true);
  const counted = await readDeviceCounts(table, 'demo');
  checks.push({
    what: 'devices counted = registry',
    ok: counted.devices === registry.length,
    detail: `${counted.devices} counted, ${registry.length} registry entries`,
  });
  checks.push({ what: 'errors', ok: result.errors === 0, detail: JSON.stringify(result.statuses) });
  const growth = samples.length > 4 ? samples.at(-1)! - samples[Math.floor(samples.length / 2)]! : 0;

  const report = {
    devices,
    seconds,
    concurrency,
    checkinsPerSecond: Math.round(result.perSecond),
    requests: result.requests,
    p50Ms: Number(result.p50Ms.toFixed(2)),
    p99Ms: Number(result.p99Ms.toFixed(2)),
    errors: result.errors,
    // What bounds the local cloud: its one event loop (and dynalite's LevelDB threads) per checkin.
    serverCpuMsPerCheckin: Number(((serverCpu * 1000) / result.requests).toFixed(3)),
    loadAverage: Number(loadAverage.toFixed(2)),
    rssBeforeMiB: Number(rssBefore.toFixed(1)),
    rssAfterMiB: Number(rssAfter.toFixed(1)),
    rssSecondHalfGrowthMiB: Number(growth.toFixed(1)),
    checks,
  };
  if (values.json) console.log(JSON.stringify(report));
  else {
    console.log(`load: ${devices} devices, ${seconds} s, ${concurrency} connections`);
    console.log(
      `  ${report.checkinsPerSecond} checkins/s (${report.requests} requests), p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms, errors ${report.errors}`,
    );
    console.log(
      `  server CPU ${report.serverCpuMsPerCheckin} ms per checkin; machine load average ${report.loadAverage} at the start`,
    );
    console.log(
      `  server RSS ${report.rssBeforeMiB} MiB before, ${report.rssAfterMiB} MiB after, ${report.rssSecondHalfGrowthMiB} MiB growth over the second half`,
    );
    for (const c of checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  }
  process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
} finally {
  await stopServer();
}

async function stopServer(): Promise<void> {
  if (server.exitCode !== null) return;
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * `rated`: most devices held back, a rate of 20 grants a minute beside a 10% rollout. `full`: one
 * update for every device, no limit: every new device is granted and reports it applied.
 * `limited`: the same with a limit of 250, whose starts all land on the update item.
 */
async function lambdaMode(
  cloud: Parameters<typeof seedUpdate>[0],
  file: LocalCloudFile,
  token: string,
): Promise<void> {
  const full = values.rollout !== 'rated';
  if (!full) await seedUpdate(cloud, { version: '2.0.0', policy: 'region == "us"', rate: 20, period: 60 });
  const granting = full
    ? await seedUpdate(cloud, { version: '2.0.0', ...(values.rollout === 'limited' ? { limit: 250 } : {}) })
    : await seedUpdate(cloud, { version: '1.5.0', policy: 'region == "eu"', percentage: 10 });
  const grantingPercentage = full ? 100 : 10;
  const paths = await writesPerPath(file, token, { granting: granting.id, grantingPercentage });
  const result = await simulateLambda({
    file,
    token,
    body: (i) =>
      JSON.stringify({
        id: `lambda-${i % devices}`,
        product: 'demo',
        version: '1.0.0',
        region: ['eu', 'us'][i % 2],
      }),
    checkins: rate * seconds,
    rate,
    containers,
    reportApplied: full,
  });
  const hot = result.topKeys.filter((k) => k.maxPerSecond > HOT_KEY_WRITES_PER_SECOND);
  if (values.json)
    console.log(
      JSON.stringify({
        mode: 'lambda',
        rollout: values.rollout,
        devices,
        seconds,
        containers,
        paths,
        ...result,
      }),
    );
  else {
    console.log(
      `load --lambda --rollout ${values.rollout}: ${result.checkins} checkins of ${devices} devices at ${result.simulatedPerSecond} checkins/s (simulated clock; ${result.wallPerSecond}/s wall), ${result.reports} reports, ${containers} containers flushing after every request, errors ${result.errors}`,
    );
    console.log(
      `  ${result.writesPerCheckin.toFixed(3)} item writes per checkin; top keys by writes per second:`,
    );
    for (const k of result.topKeys)
      console.log(`    ${String(k.maxPerSecond).padStart(5)}/s  ${k.writes} writes  ${k.key}`);
    console.log('  item writes of one request per path (one container, flushing after it):');
    for (const [path, writes] of Object.entries(paths)) console.log(`    ${writes}  ${path}`);
    console.log(`  ${hot.length === 0 ? 'ok  ' : 'FAIL'} no key above ${HOT_KEY_WRITES_PER_SECOND} writes/s`);
  }
  process.exitCode = hot.length === 0 && result.errors === 0 ? 0 : 1;
}
