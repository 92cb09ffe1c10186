/**
 * Staged rollouts (issue 15, DESIGN §12) on real dynalite with a fake clock: 10,000 simulated
 * devices through `1%,10%@24h,100%@48h` with a gate. Buckets are evaluated in-process for the
 * shares; the devices whose answers matter go through real checkins and reports of two app
 * instances (two DeviceStores, two Tables) on the one table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdminError,
  advanceRollout,
  ConflictError,
  editUpdate,
  InvalidInputError,
  pauseRollout,
  phaseStatusOf,
  resumeRollout,
  retryFailed,
  showUpdate,
} from '#admin/index.ts';
import { inPercentage, rolloutBucket } from '#core/rollout.ts';
import type { UpdateRecord } from '#core/types.ts';
import { type App, CHECKIN_PATH, createApp, REPORT_PATH } from '#functions/app.ts';
import { DeviceStore } from '#functions/device-store.ts';
import { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { Presigner } from '#functions/presign.ts';
import { createToken } from '#functions/tokens.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 3);
const PRODUCT = 'phased';
const DEVICES = Array.from({ length: 10_000 }, (_, i) => `dev-${i}`);

let cloud: TestCloud;
let token: string;
let clock = T0 - HOUR;
const now = () => clock;
const encoder = new TextEncoder();
const quiet = {
  info() {},
  warn() {},
  error: (message: string, detail?: object) => console.error(message, detail),
};

beforeAll(async () => {
  cloud = await startTestCloud();
  ({ token } = await createToken(cloud.table, { product: PRODUCT }));
});
afterAll(async () => {
  await cloud?.dispose();
});

/**
 * One app instance as a Lambda container holds it: its own Table, store, caches and clock.
 * `onRequest` sees each request its table sends (operation and input).
 */
function instance(onRequest?: (operation: string, input: Record<string, unknown>) => void): App {
  const table = new Table({
    tableName: cloud.file.tableName,
    region: cloud.file.region,
    endpoint: cloud.file.dynamoEndpoint,
    credentials: cloud.file.credentials,
  });
  if (onRequest) {
    const send = table.client.send.bind(table.client);
    table.client.send = (operation, input, options) => {
      onRequest(operation, input as Record<string, unknown>);
      return send(operation, input, options);
    };
  }
  const metrics = { count() {}, async flush() {} };
  const store = new DeviceStore(table, {
    updatesRevalidateMs: 30_000,
    updatesFullReloadMs: 300_000,
    tokenCacheMs: 60_000,
    registryRefreshMs: 3_600_000,
    metrics,
    now,
  });
  const presigner = new Presigner(
    { region: cloud.file.region, bucket: cloud.file.bucketName, endpoint: cloud.s3Url, forcePathStyle: true },
    () => cloud.file.credentials,
  );
  return createApp({ store, presigner, metrics, log: quiet, now });
}

async function call(app: App, path: string, body: object): Promise<Record<string, unknown>> {
  const res = await app({
    method: 'POST',
    path,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: encoder.encode(JSON.stringify(body)),
  });
  expect(res.status, res.body).toBe(200);
  return JSON.parse(res.body) as Record<string, unknown>;
}

/** The offered update id (with a retry suffix), or undefined when the device was held back. */
async function offered(app: App, id: string): Promise<string | undefined> {
  const answer = await call(app, CHECKIN_PATH, { id, product: PRODUCT, version: '1.0.0' });
  return typeof answer.update === 'string' ? answer.update : undefined;
}

async function reportOutcome(app: App, id: string, update: string, success: boolean) {
  await call(app, REPORT_PATH, { id, update, success, status: success ? 'applied' : 'failed' });
}

/** In flight at once: as many as a small fleet's simultaneous checkins, not the whole sample. */
const CONCURRENCY = 24;

/** Checkins of `ids` alternating between the apps, CONCURRENCY at a time; the ids granted. */
async function checkinAll(apps: readonly App[], ids: readonly string[]): Promise<Set<string>> {
  const answers: (string | undefined)[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < ids.length; i = next++)
      answers[i] = await offered(apps[i % apps.length]!, ids[i]!);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return new Set(ids.filter((_, i) => answers[i] !== undefined));
}

const admin = () => ({ table: cloud.table });
const selector = { product: PRODUCT, version: '2.0.0' };
const share = (update: UpdateRecord, pct: number) =>
  (DEVICES.filter((d) => inPercentage(update.id, d, pct)).length * 100) / DEVICES.length;
async function stored(update: UpdateRecord) {
  return (await cloud.table.get(keys.update(PRODUCT, update.id), true))!;
}

describe('a phased rollout of 10,000 devices', { timeout: 60_000 }, () => {
  it('follows 1%,10%@24h,100%@48h behind its gate, keeps earlier devices, pauses over the abort threshold', async () => {
    const update = await seedUpdate(cloud, {
      product: PRODUCT,
      version: '2.0.0',
      created: new Date(T0 - 2 * HOUR).toISOString(),
      phases: '1%,10%@1d,100%@2d',
      gate: 'success>=95%,min=20',
      startAt: new Date(T0).toISOString(),
      abortThreshold: 40,
      abortMin: 100,
    });
    const bucket = (d: string) => rolloutBucket(update.id, d);
    const phase0 = DEVICES.filter((d) => bucket(d) < 100);
    const phase1 = DEVICES.filter((d) => bucket(d) >= 100 && bucket(d) < 1000);
    const rest = DEVICES.filter((d) => bucket(d) >= 1000);
    // The plan's shares, on the buckets checkins use.
    expect(Math.abs(share(update, 1) - 1)).toBeLessThanOrEqual(1);
    expect(Math.abs(share(update, 10) - 10)).toBeLessThanOrEqual(1);
    expect(share(update, 100)).toBe(100);
    const [a, b] = [instance(), instance()];

    // Before the start nobody gets it.
    expect(await checkinAll([a, b], phase0.slice(0, 10))).toEqual(new Set());

    // Phase 1 (1%): exactly the devices under bucket 100, from either app.
    clock = T0;
    const sample1 = [...phase0, ...phase1.slice(0, 100), ...rest.slice(0, 100)];
    expect(await checkinAll([a, b], sample1)).toEqual(new Set(phase0));
    expect((await stored(update)).phase).toBe(0);

    // Reports: 10% of them fail, under the gate's 95 %.
    const failed = phase0.slice(0, Math.ceil(phase0.length / 10));
    for (const d of phase0) await reportOutcome(a, d, update.id, !failed.includes(d));

    // 25 h: the 10% phase is due, but the gate holds it: nobody new, earlier devices kept.
    clock = T0 + 25 * HOUR;
    expect(await checkinAll([a, b], [...phase1.slice(0, 50), ...phase0])).toEqual(new Set(phase0));
    const held = await showUpdate(admin(), selector);
    expect(phaseStatusOf(held, clock)).toMatchObject({ index: 0, percentage: 1, waitingOnGate: true });
    await expect(advanceRollout(admin(), selector, { now })).rejects.toThrow(ConflictError);

    // retry-failed offers the update again to the failed devices (a new id for their agents'
    // backoff); they now succeed, and the gate holds.
    const retried = await retryFailed(admin(), selector, { now });
    expect(retried.failedDevices).toBe(failed.length);
    clock += 60_000; // past the catalog's 30 s revalidation
    for (const d of failed) {
      const id = await offered(b, d);
      expect(id).toBe(`${update.id}:r1`);
      await reportOutcome(b, d, id!, true);
    }
    expect((await readUpdate(cloud.table, PRODUCT, update.id))?.counters).toMatchObject({
      success: phase0.length,
      failure: 0,
    });

    // Phase 2 (10%), entered by concurrent checkins on both apps that agree on it, once the
    // containers' gate counters are re-read (at most a second old: PhaseLedger's SHARDS_REREAD_MS).
    clock += 1_000;
    const sample2 = [...phase1, ...rest.slice(0, 300), ...phase0];
    const granted2 = await checkinAll([a, b], sample2);
    expect(granted2).toEqual(new Set([...phase1, ...phase0]));
    expect((await stored(update)).phase).toBe(1);

    // 49 h: the 100% phase is due; failures among the new devices hold the gate...
    clock = T0 + 49 * HOUR;
    const failing = phase1.slice(0, 12);
    for (const d of failing) await reportOutcome(a, d, update.id, false);
    expect(await checkinAll([a, b], rest.slice(0, 50))).toEqual(new Set());
    expect(phaseStatusOf(await showUpdate(admin(), selector), clock)).toMatchObject({
      index: 1,
      waitingOnGate: true,
    });

    // ...and over the abort threshold (40% of ≥ 100 reports) the update is paused for everyone.
    const success = phase0.length;
    const toAbort = Math.ceil((0.4 * success) / 0.6) - failing.length;
    for (const d of phase1.slice(12, 12 + toAbort)) await reportOutcome(b, d, update.id, false);
    const paused = await showUpdate(admin(), selector);
    expect(paused.paused).toBe(true);
    expect(paused.pauseReason).toMatch(/^auto-aborted: \d+ of \d+ reports failed \(threshold 40%\)$/);
    clock += 60_000;
    expect(await checkinAll([a, b], [...phase0.slice(0, 20), ...phase1.slice(200, 220)])).toEqual(new Set());

    // Resumed, the phase never went back: earlier devices stay admitted; --force skips the gate.
    await resumeRollout(admin(), selector, { now });
    await expect(advanceRollout(admin(), selector, { now })).rejects.toThrow(/waits on its gate/);
    const forced = await advanceRollout(admin(), selector, { now, force: true });
    expect(forced.phase).toMatchObject({ index: 2, percentage: 100 });
    clock += 60_000;
    const late = [...rest.slice(0, 100), ...phase0.slice(0, 20), ...phase1.slice(300, 320)];
    expect(await checkinAll([a, b], late)).toEqual(new Set(late));
  });
});

describe('a phase waiting on its gate', () => {
  it('reads its counter shards at most once a second per container, its phase at every checkin', async () => {
    const product = 'gated';
    const gatedToken = (await createToken(cloud.table, { product })).token;
    const update = await seedUpdate(cloud, {
      product,
      version: '3.0.0',
      created: new Date(T0).toISOString(),
      phases: '1%,100%@1h',
      gate: 'success>=95%,min=5',
      startAt: new Date(T0).toISOString(),
    });
    clock = T0 + 2 * HOUR; // the 100% phase is due; no reports yet, so the gate holds it
    const shardQueries: number[] = [];
    let phaseReads = 0;
    const counters = `C#${update.id}#`;
    const app = instance((operation, input) => {
      const values = input.ExpressionAttributeValues as Record<string, { S?: string }> | undefined;
      if (operation === 'Query' && values?.[':p']?.S === counters) shardQueries.push(clock);
      const key = input.Key as { sk?: { S?: string } } | undefined;
      if (operation === 'GetItem' && key?.sk?.S === `U#${update.id}`) phaseReads++;
    });
    const checkin = async (id: string) => {
      const res = await app({
        method: 'POST',
        path: CHECKIN_PATH,
        headers: { authorization: `Bearer ${gatedToken}`, 'content-type': 'application/json' },
        body: encoder.encode(JSON.stringify({ id, product, version: '1.0.0' })),
      });
      expect(res.status, res.body).toBe(200);
      expect(JSON.parse(res.body).update, 'held back by the gate').toBeUndefined();
    };
    const waiting = DEVICES.filter((d) => rolloutBucket(update.id, d) >= 100).slice(0, 20);
    for (const d of waiting) await checkin(d);
    expect(phaseReads).toBeGreaterThanOrEqual(waiting.length);
    expect(shardQueries).toEqual([clock]);
    clock += 1_000;
    await checkin(waiting[0]!);
    expect(shardQueries).toEqual([clock - 1_000, clock]);
  });
});

async function rejection(promise: Promise<unknown>): Promise<AdminError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('the operation was expected to fail');
  return err as AdminError;
}

describe('rollout control (admin operations)', { timeout: 30_000 }, () => {
  it('pauses with a reason, resumes, and answers typed one-line errors', async () => {
    const plain = { product: PRODUCT, version: '3.0.0' };
    const update = await seedUpdate(cloud, { ...plain, product: PRODUCT });
    const paused = await pauseRollout(admin(), plain, 'bad batteries in the field');
    expect(paused.update).toMatchObject({ paused: true, pauseReason: 'bad batteries in the field' });
    expect(paused.phase).toBeUndefined();
    const again = await rejection(pauseRollout(admin(), plain));
    expect([again.name, again.status, again.message]).toEqual([
      'ConflictError',
      409,
      `${PRODUCT} 3.0.0 is already paused (bad batteries in the field)`,
    ]);
    expect((await resumeRollout(admin(), plain)).update).toMatchObject({
      paused: false,
      pauseReason: undefined,
    });
    expect((await rejection(resumeRollout(admin(), plain))).message).toBe(`${PRODUCT} 3.0.0 is not paused`);
    expect(await rejection(pauseRollout(admin(), plain, ' '))).toBeInstanceOf(InvalidInputError);

    const notPhased = await rejection(advanceRollout(admin(), plain));
    expect([notPhased.status, notPhased.message]).toEqual([
      400,
      `${PRODUCT} 3.0.0 has no phases: add them with updraft edit --phases`,
    ]);
    const nothingFailed = await rejection(retryFailed(admin(), plain));
    expect([nothingFailed.status, nothingFailed.message]).toEqual([
      409,
      `No device's last report of ${PRODUCT} 3.0.0 failed: nothing to retry`,
    ]);
    expect((await rejection(advanceRollout(admin(), { product: PRODUCT, version: '9.9.9' }))).status).toBe(
      404,
    );

    // Phases added by edit start at the edit, in their canonical spelling; advance walks them to the end.
    const edited = await editUpdate(admin(), plain, { phases: '5%, 50%@12 hrs', gate: 'success>=90%' }, now);
    expect(edited).toMatchObject({
      phases: '5%,50%@12h',
      gate: 'success>=90%,min=1',
      startAt: new Date(clock).toISOString(),
    });
    expect(phaseStatusOf(edited, clock)).toMatchObject({ index: 0, percentage: 5 });
    // The gate (no reports yet) holds the next phase, even when its wait is skipped.
    expect((await rejection(advanceRollout(admin(), plain, { now }))).message).toMatch(
      /^Phase 2 waits on its gate \(success>=90%,min=1\): 0 of 0 reports succeeded; pass --force/,
    );
    expect((await advanceRollout(admin(), plain, { now, force: true })).phase).toMatchObject({ index: 1 });
    expect((await rejection(advanceRollout(admin(), plain, { now, force: true }))).message).toBe(
      `${PRODUCT} 3.0.0 is in its last phase (50%)`,
    );
    expect((await stored(update)).phase).toBe(1);
  });
});
