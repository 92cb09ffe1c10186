/**
 * The device cloud against real dynalite + s3rver over HTTP: selection, limits, tokens, reports.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keys } from '#functions/keys.ts';
import { createToken } from '#functions/tokens.ts';
import { readUpdate } from '#functions/update-counters.ts';
import {
  checkin,
  editUpdate,
  post,
  report,
  seedUpdate,
  type TestCloud,
  useTestCloud,
} from '#test/support/cloud.ts';

let cloud: TestCloud;

/** Each test works on its own product so tests do not see each other's updates. */
const freshProduct = useTestCloud('p', (started) => (cloud = started));

function device(productName: string, id: string, version = '1.0.0', props: Record<string, unknown> = {}) {
  return { id, product: productName, version, ...props };
}

async function stored(productName: string, id: string) {
  return (await readUpdate(cloud.table, productName, id))!;
}

describe('selection', () => {
  it('answers {} when the product has no update', async () => {
    const p = await freshProduct();
    const answer = await checkin(cloud, device(p.name, 'd1'), p.token);
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('{}');
  });

  it('offers the highest matching version with a URL that downloads the exact bytes and honours Range', async () => {
    const p = await freshProduct();
    const image = Buffer.from(`${'x'.repeat(5000)}the 1.2.0 image`);
    await seedUpdate(cloud, { product: p.name, version: '1.1.0' });
    const newest = await seedUpdate(cloud, { product: p.name, version: '1.2.0' }, image);
    await seedUpdate(cloud, { product: p.name, version: '1.3.0-beta.1', policy: 'test == true' });

    const answer = await checkin(cloud, device(p.name, 'd1'), p.token);
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      checksum: createHash('sha256').update(image).digest('hex'),
      update: newest.id,
      version: '1.2.0',
      size: image.length,
    });
    expect(Object.keys(answer.json)).toEqual(['url', 'checksum', 'update', 'version', 'size']);
    const url = String(answer.json.url);
    expect(url).toContain('X-Amz-Expires=3600');

    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(createHash('sha256').update(whole).digest('hex')).toBe(newest.checksum);
    const part = await fetch(url, { headers: { range: 'bytes=5000-' } });
    expect(part.status).toBe(206);
    expect(await part.text()).toBe('the 1.2.0 image');

    const tester = await checkin(cloud, device(p.name, 'd2', '1.0.0', { test: 'true' }), p.token);
    expect(tester.json.version).toBe('1.3.0-beta.1');
  });

  it('walks past updates whose policy does not match, and skips disabled and paused ones', async () => {
    const p = await freshProduct();
    const base = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const eu = await seedUpdate(cloud, { product: p.name, version: '2.1.0', policy: 'region == "eu"' });
    const off = await seedUpdate(cloud, { product: p.name, version: '2.2.0', enabled: false });
    const paused = await seedUpdate(cloud, { product: p.name, version: '2.3.0', paused: true });

    expect(
      (await checkin(cloud, device(p.name, 'us1', '1.0.0', { region: 'us' }), p.token)).json.update,
    ).toBe(base.id);
    expect(
      (await checkin(cloud, device(p.name, 'eu1', '1.0.0', { region: 'eu' }), p.token)).json.update,
    ).toBe(eu.id);

    await editUpdate(cloud, off, { enabled: true });
    expect(
      (await checkin(cloud, device(p.name, 'us1', '1.0.0', { region: 'us' }), p.token)).json.update,
    ).toBe(off.id);
    await editUpdate(cloud, paused, { paused: false });
    expect(
      (await checkin(cloud, device(p.name, 'us1', '1.0.0', { region: 'us' }), p.token)).json.update,
    ).toBe(paused.id);
  });

  it('never offers the running version or an older one, unless published to allow a downgrade', async () => {
    const p = await freshProduct();
    await seedUpdate(cloud, { product: p.name, version: '1.0.0' });
    await seedUpdate(cloud, { product: p.name, version: '0.9.0' });
    expect((await checkin(cloud, device(p.name, 'd1', '1.0.0'), p.token)).text).toBe('{}');
    expect((await checkin(cloud, device(p.name, 'd1', '1.0.0+build.7'), p.token)).text).toBe('{}');

    const back = await seedUpdate(cloud, {
      product: p.name,
      version: '0.8.0',
      allowDowngrade: true,
      policy: 'id == "broken"',
    });
    expect((await checkin(cloud, device(p.name, 'broken', '1.0.0'), p.token)).json.update).toBe(back.id);
    expect((await checkin(cloud, device(p.name, 'fine', '1.0.0'), p.token)).text).toBe('{}');
  });

  it('compares device strings numerically and reads nested properties', async () => {
    const p = await freshProduct();
    const big = await seedUpdate(cloud, {
      product: p.name,
      version: '3.0.0',
      policy: 'memory >= 256 && hw.rev > 2',
    });
    const c = (props: Record<string, unknown>) =>
      checkin(cloud, device(p.name, 'd', '1.0.0', props), p.token);
    expect((await c({ memory: '512', hw: { rev: '3' } })).json.update).toBe(big.id);
    expect((await c({ memory: '128', hw: { rev: 3 } })).text).toBe('{}');
    expect((await c({ memory: 512 })).text).toBe('{}');
  });
});

describe('rollout limits', () => {
  it('percentage is deterministic and monotonic: raising 10% to 30% keeps the first 10%', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', percentage: 10 });
    const ids = Array.from({ length: 200 }, (_, i) => `dev-${i}`);
    const granted = async () => {
      const got = new Set<string>();
      for (const id of ids) if ((await checkin(cloud, device(p.name, id), p.token)).json.update) got.add(id);
      return got;
    };
    const at10 = await granted();
    expect(at10.size).toBeGreaterThan(5);
    expect(at10.size).toBeLessThan(40);
    expect(await granted()).toEqual(at10);
    await editUpdate(cloud, update, { percentage: 30 });
    const at30 = await granted();
    expect([...at10].filter((id) => !at30.has(id))).toEqual([]);
    expect(at30.size).toBeGreaterThan(at10.size);
  });

  it('limit grants at most N devices under concurrency; granted devices get it again without counting', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', limit: 3 });
    const older = await seedUpdate(cloud, { product: p.name, version: '1.5.0' });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => checkin(cloud, device(p.name, `c${i}`), p.token)),
    );
    const winners = answers.flatMap((a, i) => (a.json.update === update.id ? [`c${i}`] : []));
    expect(winners.length).toBeLessThanOrEqual(3);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    // Deferred devices get {} and never fall through to the older update.
    expect(answers.some((a) => a.json.update === older.id)).toBe(false);
    for (const id of winners)
      expect((await checkin(cloud, device(p.name, id), p.token)).json.update).toBe(update.id);
    // Sequential late-comers fill the remaining places, then are deferred.
    for (let i = 0; i < 5; i++) await checkin(cloud, device(p.name, `late${i}`), p.token);
    await cloud.flush();
    const after = await stored(p.name, update.id);
    expect(after.counters.started).toBe(3);
    // Every checkin but the three grants was deferred: 12 + 5 - 3, however the race split them.
    expect(after.counters.deferred).toBe(14);
  });

  it('rate grants at most N per period window', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0', rate: 2, period: 3600 });
    const got = [];
    for (let i = 0; i < 5; i++)
      got.push((await checkin(cloud, device(p.name, `r${i}`), p.token)).json.update);
    expect(got.filter((u) => u === update.id)).toHaveLength(2);
    expect((await stored(p.name, update.id)).counters.started).toBe(2);
  });
});

describe('tokens', () => {
  it('accepts raw Authorization, Bearer in any case and X-Token; rejects others with 401', async () => {
    const p = await freshProduct();
    const url = `${cloud.apiUrl}/tok/provision/update`;
    const body = device(p.name, 'd1');
    expect((await post(url, body, { authorization: p.token })).status).toBe(200);
    expect((await post(url, body, { authorization: `bEaReR ${p.token}` })).status).toBe(200);
    expect((await post(url, body, { 'x-token': p.token })).status).toBe(200);
    const missing = await post(url, body);
    expect(missing.status).toBe(401);
    expect(missing.text).toBe('Authentication failed\n');
    expect((await post(url, body, { authorization: 'Bearer nope' })).status).toBe(401);
  });

  it('refuses a token of another product or device with 403', async () => {
    const p = await freshProduct();
    const other = await freshProduct();
    const wrongProduct = await checkin(cloud, device(other.name, 'd1'), p.token);
    expect(wrongProduct.status).toBe(403);
    expect(wrongProduct.text).toContain(other.name);
    const { token } = await createToken(cloud.table, { product: p.name, device: 'only-me' });
    expect((await checkin(cloud, device(p.name, 'only-me'), token)).status).toBe(200);
    expect((await checkin(cloud, device(p.name, 'someone-else'), token)).status).toBe(403);
  });
});

describe('reports', () => {
  /** Checks the devices in so each is granted the update, as a real device is before it reports. */
  async function granted(p: { name: string; token: string }, update: { id: string }, ids: string[]) {
    for (const id of ids)
      expect((await checkin(cloud, device(p.name, id), p.token)).json.update).toBe(update.id);
  }

  it('counts each (device, update, status) once and 404s unknown updates', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    await granted(p, update, ['d1', 'd2', 'd3']);
    const ok = { id: 'd1', update: update.id, success: true };
    expect((await report(cloud, ok, p.token)).text).toBe('{}');
    expect((await report(cloud, ok, p.token)).status).toBe(200);
    expect((await report(cloud, { ...ok, success: 'true', status: 'applied' }, p.token)).status).toBe(200);
    expect((await report(cloud, { id: 'd2', update: update.id, success: 'false' }, p.token)).status).toBe(
      200,
    );
    expect(
      (await report(cloud, { id: 'd3', update: update.id, success: true, status: 'downloaded' }, p.token))
        .status,
    ).toBe(200);
    const counters = (await stored(p.name, update.id)).counters;
    expect(counters.success).toBe(1);
    expect(counters.failure).toBe(1);
    const unknown = await report(cloud, { id: 'd1', update: 'nope', success: true }, p.token);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('nope');
  });

  it('counts identical reports arriving together once', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    await granted(p, update, ['twice']);
    const body = { id: 'twice', update: update.id, success: false };
    const answers = await Promise.all(Array.from({ length: 6 }, () => report(cloud, body, p.token)));
    // Each answer is 200, or 503 + Retry-After while another copy holds the claim.
    for (const a of answers) expect([200, 503]).toContain(a.status);
    expect(answers.some((a) => a.status === 200)).toBe(true);
    expect((await stored(p.name, update.id)).counters.failure).toBe(1);
  });

  it('refuses reports from devices that were never offered the update', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, {
      product: p.name,
      version: '2.0.0',
      abortThreshold: 50,
      abortMin: 1,
    });
    const forged = await report(cloud, { id: 'invented', update: update.id, success: false }, p.token);
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('invented');
    const after = await stored(p.name, update.id);
    expect(after.counters.failure).toBe(0);
    expect(after.paused).toBe(false);
  });

  it('pauses an update once failures reach the abort threshold', async () => {
    const p = await freshProduct();
    const update = await seedUpdate(cloud, {
      product: p.name,
      version: '2.0.0',
      abortThreshold: 50,
      abortMin: 4,
    });
    await granted(p, update, ['a', 'b', 'c', 'd', 'e']);
    await report(cloud, { id: 'a', update: update.id, success: true }, p.token);
    await report(cloud, { id: 'b', update: update.id, success: false }, p.token);
    await report(cloud, { id: 'c', update: update.id, success: false }, p.token);
    expect((await stored(p.name, update.id)).paused).toBe(false);
    expect((await checkin(cloud, device(p.name, 'x'), p.token)).json.update).toBe(update.id);
    await report(cloud, { id: 'd', update: update.id, success: 'true' }, p.token);
    expect((await stored(p.name, update.id)).paused).toBe(false);
    await report(cloud, { id: 'e', update: update.id, success: false, error: 'boot loop' }, p.token);
    const paused = await stored(p.name, update.id);
    expect(paused.paused).toBe(true);
    expect(paused.pauseReason).toMatch(/3 of 5 reports failed/);
    expect((await checkin(cloud, device(p.name, 'y'), p.token)).text).toBe('{}');
  });

  it('a deleted update is never re-created by a counter, and stored junk never breaks checkins', async () => {
    const p = await freshProduct();
    const good = await seedUpdate(cloud, { product: p.name, version: '1.5.0' });
    const doomed = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    await granted(p, doomed, ['g1']);
    // Delete the newest behind the container's back (its cached list still offers it).
    await cloud.table.delete(keys.update(p.name, doomed.id));
    const late = await checkin(cloud, device(p.name, 'g2'), p.token);
    expect(late.status).toBe(200);
    expect(await cloud.table.get(keys.update(p.name, doomed.id), true)).toBeUndefined();
    // A damaged record (no version) is skipped, not turned into a 400 for every device.
    await cloud.table.put({ ...keys.update(p.name, 'junk'), started: 1 });
    await editUpdate(cloud, good, { description: 'touch' });
    const after = await checkin(cloud, device(p.name, 'g3'), p.token);
    expect(after.status).toBe(200);
    expect(after.json.update).toBe(good.id);
  });
});

describe('registry', () => {
  it('records the device, its version and properties', async () => {
    const p = await freshProduct();
    await checkin(cloud, device(p.name, 'reg1', '1.4.0', { region: 'eu', hw: { rev: 2 } }), p.token);
    await cloud.flush(); // the local cloud writes the registry in batches
    const item = await cloud.table.get(keys.device(p.name, 'reg1'), true);
    expect(item?.version).toBe('1.4.0');
    expect(JSON.parse(String(item?.properties))).toMatchObject({ region: 'eu', hw: { rev: 2 } });
    // An applied report moves the device to the new version at once.
    const update = await seedUpdate(cloud, { product: p.name, version: '1.5.0' });
    expect((await checkin(cloud, device(p.name, 'reg1', '1.4.0'), p.token)).json.update).toBe(update.id);
    await report(cloud, { id: 'reg1', update: update.id, success: true }, p.token);
    await cloud.flush(); // the checkin's buffered registry entry must not bring 1.4.0 back
    expect((await cloud.table.get(keys.device(p.name, 'reg1'), true))?.version).toBe('1.5.0');
    // Also for a device whose entry had not been written yet when it reported.
    expect((await checkin(cloud, device(p.name, 'reg2', '1.4.0'), p.token)).json.update).toBe(update.id);
    await report(cloud, { id: 'reg2', update: update.id, success: true }, p.token);
    await cloud.flush();
    expect((await cloud.table.get(keys.device(p.name, 'reg2'), true))?.version).toBe('1.5.0');
  });
});
