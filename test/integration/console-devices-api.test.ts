/**
 * The console's device routes and the edit of phases on a real local cloud (dynalite + s3rver):
 * the device list with its filters and cursor, one device's history, the policy dry run ("would
 * match N of M"), each with bad input answered 4xx in one line and refused without the cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceRoutes } from '#console/routes-devices.ts';
import { checkin, report, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import {
  type AnyJson,
  type CallOptions,
  callConsole,
  type RawAnswer,
  rawRequest,
  startTestConsole,
  type TestConsole,
} from '#test/support/console.ts';

let cloud: TestCloud;
let web: TestConsole;
/** "METHOD /route/pattern" of every route a test called, checked against the route table at the end. */
const called = new Set<string>();

const PRODUCT = '/api/clouds/local/products/demo';
/** Devices e00–e05 in "eu" or "us", x1 in "eu" on 1.1.0. */
const REGIONS = ['eu', 'us', 'us', 'eu', 'us', 'eu'];

beforeAll(async () => {
  cloud = await startTestCloud();
  web = await startTestConsole(cloud);
  for (const [i, region] of REGIONS.entries())
    await checkin(cloud, { id: `e0${i}`, product: 'demo', version: '1.0.0', region });
  await checkin(cloud, { id: 'x1', product: 'demo', version: '1.1.0', region: 'eu' });
  await cloud.flush();
});

afterAll(async () => {
  await web?.stop();
  await cloud?.dispose();
});

async function call(method: string, path: string, options: CallOptions & { route?: string } = {}) {
  if (options.route) called.add(`${method} ${options.route}`);
  return callConsole(web, method, path, options);
}

function expectOneLineError(answer: RawAnswer, status: number, message: RegExp): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.text.trimEnd().split('\n')).toHaveLength(1);
  expect((JSON.parse(answer.text) as { error: string }).error).toMatch(message);
}

const ids = (page: AnyJson): string[] => page.devices.map((d: { id: string }) => d.id);

describe('device list', () => {
  const route = '/api/clouds/:cloud/products/:product/devices';

  it('pages with the cursor, searches by id prefix, filters by version and by a policy', async () => {
    const first = await call('GET', `${PRODUCT}/devices?limit=4`, { route });
    expect(first.status, first.text).toBe(200);
    expect(ids(first.json)).toEqual(['e00', 'e01', 'e02', 'e03']);
    expect(first.json.devices[0]).toMatchObject({ version: '1.0.0', lastUpdate: null });
    expect(Date.parse(first.json.devices[0].lastSeen)).toBeGreaterThan(0);
    const rest = await call('GET', `${PRODUCT}/devices?limit=4&next=${first.json.next}`);
    expect(ids(rest.json)).toEqual(['e04', 'e05', 'x1']);
    expect(rest.json.next).toBeUndefined();

    expect(ids((await call('GET', `${PRODUCT}/devices?id=x`)).json)).toEqual(['x1']);
    expect(ids((await call('GET', `${PRODUCT}/devices?version=1.1.0`)).json)).toEqual(['x1']);
    const where = encodeURIComponent('region == "eu" && semver(version, "<", "1.1.0")');
    const eu = await call('GET', `${PRODUCT}/devices?where=${where}&id=e`);
    expect(ids(eu.json)).toEqual(['e00', 'e03', 'e05']);
    // Empty filters filter nothing.
    expect(ids((await call('GET', `${PRODUCT}/devices?id=&where=%20&version=`)).json)).toHaveLength(7);
  });

  it('answers a broken filter expression with its column, in one line', async () => {
    const answer = await call('GET', `${PRODUCT}/devices?where=${encodeURIComponent('region == ')}`);
    expectOneLineError(answer, 400, /^Invalid policy: .* at column \d+$/);
    expect(answer.json.column).toBeGreaterThan(0);
  });

  it.each([
    ['a limit that is no number', '?limit=ten', /^Invalid limit "ten": use a whole number/],
    ['a limit out of range', '?limit=0', /^Invalid --limit 0: use a whole number from 1 to 1000/],
    ['an unknown parameter', '?colour=red', /^Unknown query parameter "colour": use id, version/],
    ['a bad cursor', '?next=garbage', /^Invalid --next cursor "garbage"/],
    ['a bad version', '?version=one', /version/],
    ['an id prefix with a space', '?id=a%20b', /^Invalid --id-prefix "a b": use 1–128 characters/],
  ])('refuses %s (400, one line)', async (_name, query, message) => {
    expectOneLineError(await call('GET', `${PRODUCT}/devices${query}`), 400, message);
  });
});

describe('device detail', () => {
  it('shows properties and the update history with each report, its time and error', async () => {
    const update = await seedUpdate(cloud, { product: 'demo', version: '2.0.0', policy: 'id == "e01"' });
    expect((await checkin(cloud, { id: 'e01', product: 'demo', version: '1.0.0' })).json.update).toBe(
      update.id,
    );
    const send = (status: string, success: boolean, error?: string) =>
      report(cloud, { id: 'e01', update: update.id, status, success, ...(error ? { error } : {}) });
    expect((await send('downloaded', true)).status).toBe(200);
    expect((await send('failed', false, 'script exited 3')).status).toBe(200);

    const route = '/api/clouds/:cloud/products/:product/devices/:id';
    const shown = await call('GET', `${PRODUCT}/devices/e01`, { route });
    expect(shown.status, shown.text).toBe(200);
    expect(shown.json).toMatchObject({ id: 'e01', version: '1.0.0', properties: { version: '1.0.0' } });
    expect(shown.json.history).toEqual([
      {
        update: update.id,
        version: '2.0.0',
        offered: expect.any(String),
        outcome: 'failure',
        reports: [
          { status: 'downloaded', success: true, at: expect.any(String) },
          { status: 'failed', success: false, at: expect.any(String), error: 'script exited 3' },
        ],
      },
    ]);
    const listed = await call('GET', `${PRODUCT}/devices?id=e01`);
    expect(listed.json.devices[0].lastUpdate).toMatchObject({ version: '2.0.0', outcome: 'failure' });

    expectOneLineError(
      await call('GET', `${PRODUCT}/devices/nobody`),
      404,
      /^No device "nobody" in the registry of demo/,
    );
    expectOneLineError(await call('GET', `${PRODUCT}/devices/a%20b`), 404, /^No device "a b"/);
  });
});

describe('policy dry run ("would match N of M")', () => {
  const route = '/api/clouds/:cloud/products/:product/policy/match';

  it('counts the devices a policy matches in the registry, with newVersion', async () => {
    const eu = await call('POST', `${PRODUCT}/policy/match`, { body: { policy: 'region == "eu"' }, route });
    expect(eu.status, eu.text).toBe(200);
    expect(eu.json.fleet).toMatchObject({
      product: 'demo',
      matched: 4,
      scanned: 7,
      complete: true,
      errors: 0,
    });
    const older = await call('POST', `${PRODUCT}/policy/match`, {
      body: { policy: '', newVersion: '1.1.0' },
    });
    expect(older.json).toMatchObject({ isDefault: true, fleet: { matched: 6, scanned: 7 } });
  });

  it('answers a broken policy with its column, and bad input in one line', async () => {
    const broken = await call('POST', `${PRODUCT}/policy/match`, { body: { policy: 'region == "eu" &&' } });
    expectOneLineError(broken, 400, /^Invalid policy: .* at column 18$/);
    expect(broken.json.column).toBe(18);
    const cases: [string, unknown, number, RegExp][] = [
      [PRODUCT, { policy: 'x', colour: 1 }, 400, /^Unknown field "colour": use policy, newVersion, next/],
      [PRODUCT, { policy: 7 }, 400, /^Field "policy" must be a string/],
      [PRODUCT, { policy: '', next: 'garbage' }, 400, /^Invalid --next cursor "garbage"/],
      [PRODUCT, { policy: '', newVersion: 'one' }, 400, /version/],
      ['/api/clouds/local/products/a%20b', { policy: '' }, 400, /^Invalid product "a b"/],
      ['/api/clouds/mars/products/demo', { policy: '' }, 404, /^Unknown cloud "mars"/],
    ];
    for (const [base, body, status, message] of cases)
      expectOneLineError(await call('POST', `${base}/policy/match`, { body }), status, message);
  });

  it('refuses a dry run from another origin (403)', async () => {
    const cross = await call('POST', `${PRODUCT}/policy/match`, {
      body: { policy: '' },
      headers: { origin: 'http://evil.example' },
    });
    expectOneLineError(cross, 403, /^POST from origin http:\/\/evil\.example refused/);
  });
});

describe('edit: phases, gate and start time', () => {
  it('sets them in their canonical spelling, answers the phase status, and removes them with null', async () => {
    await seedUpdate(cloud, { product: 'demo', version: '3.0.0', percentage: 50 });
    const at = `${PRODUCT}/updates/3.0.0`;
    const route = '/api/clouds/:cloud/products/:product/updates/:version';
    const start = new Date(Date.now() - 60_000).toISOString();
    const edited = await call('PATCH', at, {
      body: {
        phases: '1%, 10%@24 hrs, 100%@2d',
        gate: 'success>=95%,min=20',
        startAt: start,
        percentage: null,
      },
      route,
    });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.json).toMatchObject({
      phases: '1%,10%@1d,100%@2d',
      gate: 'success>=95%,min=20',
      startAt: start,
      phaseStatus: { index: 0, percentage: 1 },
    });
    expect(edited.json.percentage).toBeUndefined();

    expectOneLineError(await call('PATCH', at, { body: { gate: 'success>=95' } }), 400, /gate/);
    expectOneLineError(
      await call('PATCH', at, { body: { phases: 5 } }),
      400,
      /^Field "phases" must be a string/,
    );
    expectOneLineError(await call('PATCH', at, { body: { phases: null } }), 400, /^--gate needs --phases/);
    const removed = await call('PATCH', at, { body: { phases: null, gate: null, startAt: null } });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json.phases).toBeUndefined();
    expect(removed.json.phaseStatus).toBeUndefined();
  });
});

describe('hostile cursors', () => {
  /** A cursor in the format the server makes, for `pk`, resuming after `sk`. */
  const cursor = (pk: string, sk: string) =>
    Buffer.from(JSON.stringify({ pk: { S: pk }, sk: { S: sk } })).toString('base64url');

  it('refuses a cursor of the right partition naming a key no device id can be (400, not 500)', async () => {
    // 1,100 characters: within the cursor's length, over DynamoDB's 1 KiB sort key.
    const long = 'z'.repeat(1100);
    const update = await seedUpdate(cloud, { product: 'demo', version: '2.5.0', enabled: false });
    const refused = /^Invalid --next cursor "[A-Za-z0-9_-]{40}…?": pass the cursor/;
    expectOneLineError(
      await call('GET', `${PRODUCT}/devices?next=${cursor('DEV#demo', long)}`),
      400,
      refused,
    );
    expectOneLineError(
      await call('GET', `${PRODUCT}/devices?where=true&next=${cursor('DEV#demo', 'a b')}`),
      400,
      refused,
    );
    expectOneLineError(
      await call('POST', `${PRODUCT}/policy/match`, { body: { policy: '', next: cursor('DEV#demo', long) } }),
      400,
      refused,
    );
    expectOneLineError(
      await call('GET', `${PRODUCT}/updates/2.5.0/devices?next=${cursor(`G#${update.id}`, long)}`),
      400,
      refused,
    );
  });
});

describe('access', () => {
  it('refuses every device route without the cookie (401, one line)', async () => {
    for (const [method, path] of [
      ['GET', `${PRODUCT}/devices`],
      ['GET', `${PRODUCT}/devices/e01`],
      ['POST', `${PRODUCT}/policy/match`],
    ] as const) {
      const headers: Record<string, string> = { host: web.host, 'content-type': 'application/json' };
      if (method === 'POST') headers.origin = web.origin;
      const answer = await rawRequest(
        web.origin,
        method,
        path,
        headers,
        method === 'POST' ? '{"policy":""}' : undefined,
      );
      expectOneLineError(answer, 401, /^Not signed in to the console/);
    }
  });

  it('exercised every device route', () => {
    const table = deviceRoutes(() => {
      throw new Error('no cloud: the table is only listed');
    }).map((r) => `${r.method} ${r.path}`);
    for (const route of table) expect(called).toContain(route);
  });
});
