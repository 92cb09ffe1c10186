/**
 * The console's HTTP API on a real local cloud (dynalite + s3rver): access (secret → cookie, Host,
 * Origin), every route through the admin operations, and one-line errors for bad input.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRoutes } from '#console/routes.ts';
import { deviceRoutes } from '#console/routes-devices.ts';
import { verifyManifest } from '#core/manifest.ts';
import {
  checkin,
  freshProduct,
  report,
  seedUpdate,
  startTestCloud,
  type TestCloud,
} from '#test/support/cloud.ts';
import {
  CONSOLE_SECRET,
  type RawAnswer,
  rawRequest,
  startTestConsole,
  type TestConsole,
} from '#test/support/console.ts';
import { createStandInClouds } from '#test/support/stand-in-clouds.ts';

let cloud: TestCloud;
let web: TestConsole;
/** "METHOD /route/pattern" of every route a test called, checked against the route table at the end. */
const called = new Set<string>();

/** Files the signing-key tests point the console at. */
const work = mkdtempSync(join(tmpdir(), 'updraft-console-api-'));
const notAKey = join(work, 'not-a-key.pem');
writeFileSync(notAKey, 'hello');

beforeAll(async () => {
  cloud = await startTestCloud();
  // A second cloud, "east", stands in for a deployed one: its own table and bucket, reached as the CLI does.
  const east = await createStandInClouds(cloud, work, ['east']);
  Object.assign(process.env, east.env);
  web = await startTestConsole(cloud, { names: ['east'], outputsFile: east.outputsFile });
});

afterAll(async () => {
  await web?.stop();
  await cloud?.dispose();
  rmSync(work, { recursive: true, force: true });
});

interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** The route pattern this call exercises. */
  readonly route?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read JSON answers field by field
type Json = any;

/** A request as the console's own page makes it: right Host, cookie, and Origin on mutations. */
async function call(
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<RawAnswer & { json: Json }> {
  const headers: Record<string, string> = { host: web.host, cookie: web.cookie };
  if (method !== 'GET') headers.origin = web.origin;
  let body: string | Buffer | undefined;
  if (Buffer.isBuffer(options.body)) {
    body = options.body;
    headers['content-type'] = 'application/octet-stream';
  } else if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const answer = await rawRequest(web.origin, method, path, { ...headers, ...options.headers }, body);
  if (options.route) called.add(`${method} ${options.route}`);
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {}
  return { ...answer, json };
}

/** An error answer: the status, one line of JSON holding just the message (and a column). */
function expectOneLineError(answer: RawAnswer, status: number, message: RegExp): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.text.trimEnd().split('\n')).toHaveLength(1);
  const body = JSON.parse(answer.text) as { error: string };
  expect(body.error).toMatch(message);
}

/** GET with the cookie, the body as bytes (compressed bodies are not text). */
function rawRequestBytes(path: string, headers: Record<string, string>) {
  return new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request(
      `${web.origin}${path}`,
      { headers: { host: web.host, cookie: web.cookie, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const publishPath = (settings: Record<string, unknown>, cloudName = 'local') =>
  `/api/clouds/${cloudName}/products/demo/updates?settings=${encodeURIComponent(JSON.stringify(settings))}`;

describe('access', () => {
  it('trades the secret for an HttpOnly SameSite=Strict cookie and strips it from the URL', async () => {
    const answer = await rawRequest(web.origin, 'GET', `/?secret=${CONSOLE_SECRET}`, { host: web.host });
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe('/');
    const cookie = String(answer.headers['set-cookie']);
    expect(cookie).toBe(`${web.cookie}; HttpOnly; SameSite=Strict; Path=/`);
    expect(answer.headers['content-security-policy']).toContain("default-src 'self'");
    expect(web.url).toBe(`${web.origin}/?secret=${CONSOLE_SECRET}`);
    const elsewhere = await rawRequest(web.origin, 'GET', `/.//evil.example/?secret=${CONSOLE_SECRET}`, {
      host: web.host,
    });
    expect(elsewhere.headers.location).toBe('/');
  });

  it('serves the page and its assets with a strict CSP and no inline script', async () => {
    const page = await call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, content] of scripts) {
      expect(attributes).toMatch(/src="\/assets\//);
      expect(content).toBe('');
    }
    for (const [, src] of page.text.matchAll(/(?:src|href)="([^"]+)"/g)) {
      if (src === 'data:,') continue; // the empty icon: no request at all
      const asset = await call('GET', src ?? '');
      expect(asset.status, src).toBe(200);
      expect(asset.headers['content-security-policy']).toBeDefined();
      const zipped = await rawRequestBytes(src ?? '', { 'accept-encoding': 'gzip, br' });
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(zipped.body).toString()).toBe(asset.text);
    }
  });

  it('answers a request line that is no URL in one line, and keeps serving', async () => {
    const answer = await rawRequest(web.origin, 'GET', '//[', { host: web.host, cookie: web.cookie });
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/^Malformed request URL[^\n]*\n$/);
    expect((await call('GET', '/api/session')).status).toBe(200);
  });

  it('serves only the built files: no path reaches the file system', async () => {
    for (const path of [
      '/package.json',
      '/assets/../package.json',
      '/assets/%2e%2e/package.json',
      '/routes.ts',
      '/assets/',
    ]) {
      const answer = await call('GET', path);
      expect(answer.status, path).toBe(404);
      expect(answer.text, path).toMatch(/^No route GET \/[^\n]*\n$/);
    }
  });

  it('refuses a request without the cookie, with a wrong secret or a wrong cookie (401, one line)', async () => {
    const noCookie = await rawRequest(web.origin, 'GET', '/api/session', { host: web.host });
    expectOneLineError(noCookie, 401, /^Not signed in to the console: open the URL with the secret/);
    const page = await rawRequest(web.origin, 'GET', '/', { host: web.host });
    expect(page.status).toBe(401);
    expect(page.text).toMatch(/^Not signed in to the console[^\n]*\n$/);
    const wrongSecret = await rawRequest(web.origin, 'GET', '/?secret=guess', { host: web.host });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.headers['set-cookie']).toBeUndefined();
    const wrongCookie = await call('GET', '/api/session', {
      headers: { cookie: `updraft-console-${web.port}=guess` },
    });
    expectOneLineError(wrongCookie, 401, /^Console session expired/);
  });

  it('refuses a foreign Host header even with the cookie (DNS rebinding: 403)', async () => {
    const answer = await call('GET', '/api/session', { headers: { host: `evil.example:${web.port}` } });
    expectOneLineError(answer, 403, /^Host "evil.example:\d+" is not this console's address/);
  });

  it('refuses mutations from another origin or without one (403), before doing anything', async () => {
    const cross = await call('POST', '/api/clouds/local/tokens', {
      body: { product: 'demo' },
      headers: { origin: 'http://evil.example' },
    });
    expectOneLineError(cross, 403, /^POST from origin http:\/\/evil\.example refused/);
    const none = await rawRequest(web.origin, 'DELETE', '/api/clouds/local/tokens/abcd', {
      host: web.host,
      cookie: web.cookie,
    });
    expectOneLineError(none, 403, /^DELETE from origin \(none\) refused/);
    expect((await call('GET', '/api/clouds/local/tokens?product=demo')).json).toHaveLength(1); // the dev token only
    const badProduct = await call('GET', '/api/clouds/local/tokens?product=a%20b');
    expectOneLineError(badProduct, 400, /^Invalid product "a b": use 1–64 characters/);
  });
  it('refuses rollout control from another origin (403) and leaves the update as it was', async () => {
    const settings = { version: '8.1.0', name: 'fw.bin', phases: '1%,100%@24h' };
    expect((await call('POST', publishPath(settings), { body: Buffer.from('x') })).status).toBe(201);
    const at = (action: string) => `/api/clouds/local/products/demo/updates/8.1.0/${action}`;
    for (const action of ['pause', 'resume', 'advance', 'retry-failed']) {
      const cross = await call('POST', at(action), { body: {}, headers: { origin: 'http://evil.example' } });
      expectOneLineError(cross, 403, /^POST from origin http:\/\/evil\.example refused/);
    }
    const shown = await call('GET', '/api/clouds/local/products/demo/updates/8.1.0');
    expect(shown.json).toMatchObject({ paused: false, phaseStatus: { index: 0 } });
    await call('DELETE', '/api/clouds/local/products/demo/updates/8.1.0');
  });
});

describe('routes', () => {
  const image = randomBytes(300_000);

  it('answers the session', async () => {
    const answer = await call('GET', '/api/session', { route: '/api/session' });
    expect(answer.json).toEqual({ clouds: ['local', 'east'], defaultProduct: 'demo' });
  });

  it('generates a key pair: the private key is in the answer only, a new one each time', async () => {
    const first = await call('POST', '/api/keys', { route: '/api/keys' });
    expect(first.status, first.text).toBe(201);
    expect(first.json.privateKeyPem).toMatch(
      /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/,
    );
    expect(first.json.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(Buffer.from(first.json.publicKey, 'base64')).toHaveLength(32);
    expect(first.json.privateKeyFile).toBeUndefined();
    const second = await call('POST', '/api/keys');
    expect(second.json.privateKeyPem).not.toBe(first.json.privateKeyPem);
    expectOneLineError(
      await call('POST', '/api/keys', { headers: { origin: 'http://evil.example' } }),
      403,
      /^POST from origin http:\/\/evil.example refused/,
    );
  });

  it('publishes signed with a signing key read from a path on the console machine', async () => {
    const keys = (await call('POST', '/api/keys')).json;
    const keyFile = join(work, 'signing.pem');
    writeFileSync(keyFile, keys.privateKeyPem);
    const published = await call(
      'POST',
      publishPath({ version: '0.9.0', name: 'fw.bin', signKey: keyFile }),
      {
        body: image,
      },
    );
    expect(published.status, published.text).toBe(201);
    expect(published.text).not.toContain('PRIVATE KEY');
    const { product, version, checksum, size, signature } = published.json;
    const manifest = { product, version, sha256: checksum, size, allowDowngrade: false };
    expect(verifyManifest(manifest, signature, [keys.publicKey])).toBe(true);
    const other = (await call('POST', '/api/keys')).json.publicKey;
    expect(verifyManifest(manifest, signature, [other])).toBe(false);
    await call('DELETE', '/api/clouds/local/products/demo/updates/0.9.0');
  });

  it('serves each cloud from its own table and bucket, named in the path', async () => {
    const published = await call('POST', publishPath({ version: '3.0.0', name: 'east.bin' }, 'east'), {
      body: Buffer.from('image for east'),
    });
    expect(published.status, published.text).toBe(201);
    const east = await call('GET', '/api/clouds/east/products/demo/updates');
    expect(east.json.map((u: { version: string }) => u.version)).toEqual(['3.0.0']);
    const local = await call('GET', '/api/clouds/local/products/demo/updates');
    expect(local.json).toEqual([]);
    const eastTokens = await call('GET', '/api/clouds/east/tokens?product=demo');
    expect(eastTokens.json).toEqual([]); // the local cloud's development token is not east's
    await call('DELETE', '/api/clouds/east/products/demo/updates/3.0.0');
  });

  it('publishes an upload streamed as the body, then lists, shows, edits, disables and enables it', async () => {
    const published = await call(
      'POST',
      publishPath({ version: '1.1.0', name: 'fw.bin', policy: 'region == "eu"', limit: 5 }),
      {
        body: image,
        route: '/api/clouds/:cloud/products/:product/updates',
      },
    );
    expect(published.status, published.text).toBe(201);
    expect(published.json).toMatchObject({
      version: '1.1.0',
      checksum: sha256(image),
      size: image.length,
      limit: 5,
    });
    expect(published.json.key).toBe('images/demo/1.1.0/fw.bin');

    const list = await call('GET', '/api/clouds/local/products/demo/updates', {
      route: '/api/clouds/:cloud/products/:product/updates',
    });
    expect(list.json.map((u: { version: string }) => u.version)).toEqual(['1.1.0']);
    const shown = await call('GET', '/api/clouds/local/products/demo/updates/1.1.0', {
      route: '/api/clouds/:cloud/products/:product/updates/:version',
    });
    expect(shown.json.policy).toBe('region == "eu"');

    const edited = await call('PATCH', '/api/clouds/local/products/demo/updates/1.1.0', {
      body: { policy: 'region == "us"', limit: null },
      route: '/api/clouds/:cloud/products/:product/updates/:version',
    });
    expect(edited.json.policy).toBe('region == "us"');
    expect(edited.json.limit).toBeUndefined();

    const disabled = await call('POST', '/api/clouds/local/products/demo/updates/1.1.0/disable', {
      route: '/api/clouds/:cloud/products/:product/updates/:version/disable',
    });
    expect(disabled.json.enabled).toBe(false);
    const enabled = await call('POST', '/api/clouds/local/products/demo/updates/1.1.0/enable', {
      route: '/api/clouds/:cloud/products/:product/updates/:version/enable',
    });
    expect(enabled.json.enabled).toBe(true);
  });

  it('answers the product statistics with the per-update counters', async () => {
    const stats = await call('GET', '/api/clouds/local/products/demo/stats?days=3', {
      route: '/api/clouds/:cloud/products/:product/stats',
    });
    expect(stats.status).toBe(200);
    expect(stats.json.product).toBe('demo');
    expect(stats.json.updates).toEqual([
      expect.objectContaining({ version: '1.1.0', started: 0, success: 0, failure: 0 }),
    ]);
    expectOneLineError(
      await call('GET', '/api/clouds/local/products/demo/stats?days=x'),
      400,
      /^Invalid days "x"/,
    );
  });

  it('checks a policy: terms when valid, the column when not', async () => {
    const good = await call('POST', '/api/policy/check', {
      body: {
        policy: 'region == "eu" && semver(version, "<", newVersion)',
        newVersion: '2.0.0',
        device: { version: '1.0.0', region: 'eu' },
      },
      route: '/api/policy/check',
    });
    expect(good.status, good.text).toBe(200);
    expect(good.json).toMatchObject({
      isDefault: false,
      newVersion: '2.0.0',
      device: { version: '1.0.0', outcome: true },
    });
    expect(good.json.terms).toBeGreaterThanOrEqual(2);
    const bad = await call('POST', '/api/policy/check', { body: { policy: 'region == ' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: expect.stringMatching(/^Invalid policy: .* at column \d+$/),
      column: expect.any(Number),
    });
    expect(bad.text.trimEnd().split('\n')).toHaveLength(1);
    const file = await call('POST', '/api/policy/check', {
      body: { policy: '', device: { file: '/etc/passwd' } },
    });
    expectOneLineError(file, 400, /has no "version"/);
  });

  it('creates a token (secret once), lists it without the secret, revokes it', async () => {
    const created = await call('POST', '/api/clouds/local/tokens', {
      body: { product: 'demo', device: 'dev-1', description: 'bench rig' },
      route: '/api/clouds/:cloud/tokens',
    });
    expect(created.status).toBe(201);
    expect(created.json.token).toMatch(/^udt_/);
    const id = created.json.info.id as string;
    const list = await call('GET', '/api/clouds/local/tokens?product=demo', {
      route: '/api/clouds/:cloud/tokens',
    });
    expect(list.json).toContainEqual(
      expect.objectContaining({ id, device: 'dev-1', description: 'bench rig' }),
    );
    expect(list.text).not.toContain(created.json.token);
    const revoked = await call('DELETE', `/api/clouds/local/tokens/${id}`, {
      route: '/api/clouds/:cloud/tokens/:id',
    });
    expect(revoked.json).toEqual({ revoked: id });
    expectOneLineError(
      await call('DELETE', `/api/clouds/local/tokens/${id}`),
      404,
      /^No single token with id/,
    );
  });

  it('controls a phased rollout: pause with a reason, resume, advance (gate, then force), retry failed', async () => {
    const route = (action: string) => ({
      route: `/api/clouds/:cloud/products/:product/updates/:version/${action}`,
    });
    const at = (action: string) => `/api/clouds/local/products/demo/updates/8.0.0/${action}`;
    const settings = { version: '8.0.0', name: 'fw.bin', phases: '1%,100%@24h', gate: 'success>=90%,min=5' };
    expect((await call('POST', publishPath(settings), { body: image })).status).toBe(201);
    const listed = await call('GET', '/api/clouds/local/products/demo/updates');
    expect(listed.json[0].phaseStatus).toMatchObject({ index: 0, percentage: 1, waitingOnGate: false });

    const paused = await call('POST', at('pause'), { body: { reason: 'watching eu' }, ...route('pause') });
    expect(paused.json.update).toMatchObject({ paused: true, pauseReason: 'watching eu' });
    expectOneLineError(await call('POST', at('pause'), { body: {} }), 409, /already paused \(watching eu\)/);
    const resumed = await call('POST', at('resume'), route('resume'));
    expect(resumed.json.update.paused).toBe(false);
    expect(resumed.json.phase).toMatchObject({ index: 0 });

    const held = await call('POST', at('advance'), { body: {}, ...route('advance') });
    expectOneLineError(held, 409, /^Phase 2 waits on its gate .*pass --force/);
    const forced = await call('POST', at('advance'), { body: { force: true } });
    expect(forced.json.phase).toMatchObject({ index: 1, percentage: 100 });

    const offered = await checkin(cloud, { id: 'r1', product: 'demo', version: '1.0.0' });
    expect(offered.json.version).toBe('8.0.0');
    expect((await report(cloud, { id: 'r1', update: offered.json.update, success: 'false' })).status).toBe(
      200,
    );
    const retried = await call('POST', at('retry-failed'), route('retry-failed'));
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json.failedDevices).toBe(1);
    await call('DELETE', '/api/clouds/local/products/demo/updates/8.0.0');
  });

  it('deletes an update, which then is not found', async () => {
    const deleted = await call('DELETE', '/api/clouds/local/products/demo/updates/1.1.0', {
      route: '/api/clouds/:cloud/products/:product/updates/:version',
    });
    expect(deleted.json.version).toBe('1.1.0');
    expectOneLineError(
      await call('GET', '/api/clouds/local/products/demo/updates/1.1.0'),
      404,
      /^No update 1.1.0 of product demo/,
    );
  });

  it("answers the fleet views: versions per day, an update's series, failures by reason, devices a page at a time", async () => {
    const p = await freshProduct(cloud, 'view');
    const update = await seedUpdate(cloud, { product: p.name, version: '2.0.0' });
    const ids = ['f0', 'f1', 'f2', 'f3', 'f4'];
    for (const id of ids) {
      const offered = await checkin(cloud, { id, product: p.name, version: '1.0.0' }, p.token);
      expect(offered.json.update).toBe(update.id);
    }
    const outcomes: Record<string, object> = {
      f0: { success: true, status: 'applied', version: '2.0.0' },
      f1: { success: false, status: 'failed', error: 'disk full' },
      f2: { success: false, status: 'failed', error: 'disk full' },
      f3: { success: false, status: 'failed', error: 'bad signature' },
    };
    for (const [id, outcome] of Object.entries(outcomes))
      expect((await report(cloud, { id, update: update.id, ...outcome }, p.token)).status).toBe(200);
    await cloud.flush();
    const base = `/api/clouds/local/products/${p.name}`;

    const stats = await call('GET', `${base}/stats?days=2&hours=3`);
    const today = new Date().toISOString().slice(0, 10);
    expect(stats.json.seen).toEqual([{ day: today, devices: 5, versions: { '1.0.0': 4, '2.0.0': 1 } }]);
    const series = stats.json.series.updates[update.id] as Record<string, number>[];
    expect(series).toHaveLength(3);
    const sum = (name: string) => series.reduce((total, point) => total + (point[name] ?? 0), 0);
    expect([sum('UpdateStarted'), sum('UpdateSuccess'), sum('UpdateFailure')]).toEqual([5, 1, 3]);

    const failures = await call('GET', `${base}/updates/2.0.0/failures`, {
      route: '/api/clouds/:cloud/products/:product/updates/:version/failures',
    });
    expect(failures.status, failures.text).toBe(200);
    expect(
      failures.json.reasons.map((r: Json) => [r.error, r.devices, r.latest.map((d: Json) => d.id).sort()]),
    ).toEqual([
      ['disk full', 2, ['f1', 'f2']],
      ['bad signature', 1, ['f3']],
    ]);

    const pages: Json[] = [];
    let next: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '2', ...(next ? { next } : {}) });
      const page = await call('GET', `${base}/updates/2.0.0/devices?${query}`, {
        route: '/api/clouds/:cloud/products/:product/updates/:version/devices',
      });
      expect(page.status, page.text).toBe(200);
      pages.push(page.json);
      next = page.json.next;
    } while (next && pages.length < 5);
    expect(pages.map((page) => page.devices.length)).toEqual([2, 2, 1]);
    const devices = pages.flatMap((page) => page.devices);
    expect(devices.map((d: Json) => [d.id, d.outcome, d.error])).toEqual([
      ['f0', 'success', undefined],
      ['f1', 'failure', 'disk full'],
      ['f2', 'failure', 'disk full'],
      ['f3', 'failure', 'bad signature'],
      ['f4', null, undefined],
    ]);
    expect(devices[0].granted).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(devices[1].outcomeAt >= devices[1].granted).toBe(true);
  });

  it('exercised every route of the table', () => {
    // The device routes have their own file, console-devices-api.test.ts, which checks them.
    const devices = new Set(deviceRoutes(() => undefined as never).map((r) => `${r.method} ${r.path}`));
    const table = apiRoutes({ clouds: [], defaultProduct: 'demo' })
      .map((r) => `${r.method} ${r.path}`)
      .filter((route) => !devices.has(route));
    expect([...called].sort()).toEqual([...table].sort());
  });
});

describe('bad input answers 4xx in one line', () => {
  it.each([
    [
      'publish without settings',
      'POST',
      '/api/clouds/local/products/demo/updates',
      Buffer.from('x'),
      400,
      /^Query parameter "settings" is missing/,
    ],
    [
      'publish with an unknown setting',
      'POST',
      publishPath({ version: '1.2.0', name: 'a.bin', colour: 'red' }),
      Buffer.from('x'),
      400,
      /^Unknown field "colour"/,
    ],
    [
      'publish with a bad version',
      'POST',
      publishPath({ version: 'one', name: 'a.bin' }),
      Buffer.from('x'),
      400,
      /version/i,
    ],
    [
      'publish with a bad limit',
      'POST',
      publishPath({ version: '1.2.0', name: 'a.bin', limit: 0 }),
      Buffer.from('x'),
      400,
      /^Invalid --limit 0/,
    ],
    [
      'publish with a broken policy',
      'POST',
      publishPath({ version: '1.2.0', name: 'a.bin', policy: '((' }),
      Buffer.from('x'),
      400,
      /^Invalid policy/,
    ],
    ['a body that is not JSON', 'POST', '/api/clouds/local/tokens', '{', 400, /^The body is not JSON/],
    [
      'a token for a bad product',
      'POST',
      '/api/clouds/local/tokens',
      { product: 'a b' },
      400,
      /^Invalid --product "a b"/,
    ],
    [
      'a field of the wrong type',
      'POST',
      '/api/clouds/local/tokens',
      { product: 5 },
      400,
      /^Field "product" must be a string/,
    ],
    ['a bad token id', 'DELETE', '/api/clouds/local/tokens/xyz', undefined, 400, /^Invalid token id "xyz"/],
    [
      'an edit with nothing to change',
      'PATCH',
      '/api/clouds/local/products/demo/updates/9.9.9',
      {},
      400,
      /^Nothing to edit/,
    ],
    [
      'an update that does not exist',
      'POST',
      '/api/clouds/local/products/demo/updates/9.9.9/enable',
      undefined,
      404,
      /^No update 9.9.9/,
    ],
    [
      'a product name with a space',
      'GET',
      '/api/clouds/local/products/a%20b/updates',
      undefined,
      400,
      /^Invalid product/,
    ],
    [
      'a pause of an update that does not exist',
      'POST',
      '/api/clouds/local/products/demo/updates/9.9.9/pause',
      {},
      404,
      /^No update 9.9.9/,
    ],
    [
      'an advance whose force is not a boolean',
      'POST',
      '/api/clouds/local/products/demo/updates/9.9.9/advance',
      { force: 'yes' },
      400,
      /^Field "force" must be/,
    ],
    ['an unknown route', 'GET', '/api/nothing', undefined, 404, /^No route GET \/api\/nothing/],
    [
      'a cloud the console does not serve',
      'GET',
      '/api/clouds/mars/products/demo/updates',
      undefined,
      404,
      /^Unknown cloud "mars": this console serves local, east$/,
    ],
    [
      'a signing key path that does not exist',
      'POST',
      publishPath({ version: '1.5.0', name: 'fw.bin', signKey: join(work, 'missing.pem') }),
      Buffer.from('x'),
      400,
      /^Signing key not found: .*missing\.pem$/,
    ],
    [
      'a signing key file that holds no key',
      'POST',
      publishPath({ version: '1.5.0', name: 'fw.bin', signKey: notAKey }),
      Buffer.from('x'),
      400,
      /^Invalid signing key: not a PEM private key/,
    ],
    [
      'a signing key that is not a path',
      'POST',
      publishPath({ version: '1.5.0', name: 'fw.bin', signKey: 7 }),
      Buffer.from('x'),
      400,
      /^Field "signKey" must be a string/,
    ],
    [
      'a wrong method',
      'PUT',
      '/api/clouds/local/tokens',
      undefined,
      405,
      /^PUT is not allowed on \/api\/clouds\/local\/tokens/,
    ],
  ])('%s', async (_name, method, path, body, status, message) => {
    expectOneLineError(await call(method, path, { body }), status, message);
  });

  it('answers a refused upload in one line while the image is still being sent', async () => {
    const large = randomBytes(8 * 1024 * 1024);
    const answer = await call('POST', publishPath({ version: 'bad', name: 'big.bin' }), { body: large });
    expectOneLineError(answer, 400, /version/i);
  });

  it('refuses a JSON route without a JSON content type (415)', async () => {
    const answer = await call('POST', '/api/clouds/local/tokens', {
      body: 'product=demo',
      headers: { 'content-type': 'text/plain' },
    });
    expectOneLineError(answer, 415, /^Send the body as application\/json/);
  });

  it('leaves nothing published after a refused upload', async () => {
    const list = await call('GET', '/api/clouds/local/products/demo/updates');
    expect(list.json).toEqual([]);
  });
});

describe('device-facing listener', () => {
  it('never serves the console or its API', async () => {
    for (const route of apiRoutes({ clouds: [], defaultProduct: 'demo' })) {
      const path = route.path
        .replace(':cloud', 'local')
        .replace(':product', 'demo')
        .replace(':version', '1.0.0')
        .replace(':id', 'abcd');
      const body = route.method === 'POST' || route.method === 'PATCH' ? '{}' : undefined;
      const headers = { cookie: web.cookie, 'content-type': 'application/json' };
      const answer = await rawRequest(cloud.apiUrl, route.method, path, headers, body);
      expect(answer.status, `${route.method} ${path}: ${answer.text}`).toBe(404);
    }
    for (const path of ['/', `/?secret=${CONSOLE_SECRET}`, '/assets/main.js']) {
      expect((await rawRequest(cloud.apiUrl, 'GET', path, {})).status, path).toBe(404);
    }
  });
});

describe('fleet views: bad input answers 4xx in one line', () => {
  const update = '/api/clouds/local/products/demo/updates';
  it.each([
    [
      'an hour count that is no number',
      '/api/clouds/local/products/demo/stats?hours=1h',
      400,
      /^Invalid hours "1h": use a whole number$/,
    ],
    [
      'an hour count beyond the retention',
      '/api/clouds/local/products/demo/stats?hours=5000',
      400,
      /^Invalid --hours 5000: use a whole number from 1 to 2160$/,
    ],
    [
      'an unknown stats parameter',
      '/api/clouds/local/products/demo/stats?dayz=3',
      400,
      /^Unknown query parameter "dayz": use days, hours$/,
    ],
    [
      // Echoed in part, as the device list does: the answer stays one short line.
      'an unknown parameter of 5,000 characters',
      `/api/clouds/local/products/demo/stats?${'x'.repeat(5000)}=1`,
      400,
      /^Unknown query parameter "x{60}…": use days, hours$/,
    ],
    [
      'failures of an update that does not exist',
      `${update}/9.9.9/failures`,
      404,
      /^No update 9.9.9 of product demo/,
    ],
    ['failures of a version that is none', `${update}/latest/failures`, 400, /latest/],
    [
      'a parameter failures do not take',
      `${update}/9.9.9/failures?limit=3`,
      400,
      /^Unknown query parameter "limit": use none$/,
    ],
    [
      'devices of an update that does not exist',
      `${update}/9.9.9/devices`,
      404,
      /^No update 9.9.9 of product demo/,
    ],
    [
      'a page size of 0',
      `${update}/9.9.9/devices?limit=0`,
      400,
      /^Invalid --limit 0: use a whole number from 1 to 1000$/,
    ],
    [
      'a page size that is no number',
      `${update}/9.9.9/devices?limit=ten`,
      400,
      /^Invalid limit "ten": use a whole number$/,
    ],
  ])('%s', async (_name, path, status, message) => {
    expectOneLineError(await call('GET', path), status, message);
  });

  it("refuses a cursor that is not one of this update's pages", async () => {
    const p = await freshProduct(cloud, 'cursor');
    const first = await seedUpdate(cloud, { product: p.name, version: '3.0.0' });
    await seedUpdate(cloud, { product: p.name, version: '3.1.0', enabled: false });
    for (const id of ['c1', 'c2']) {
      await checkin(cloud, { id, product: p.name, version: '1.0.0' }, p.token);
      await report(
        cloud,
        { id, update: first.id, success: true, status: 'applied', version: '3.0.0' },
        p.token,
      );
    }
    const base = `/api/clouds/local/products/${p.name}/updates`;
    const page = await call('GET', `${base}/3.0.0/devices?limit=1`);
    expect(page.json.devices).toHaveLength(1);
    expect(typeof page.json.next).toBe('string');
    expectOneLineError(
      await call('GET', `${base}/3.1.0/devices?next=${page.json.next}`),
      400,
      /^Invalid --next cursor ".*": pass the cursor a previous page gave, unchanged, for update 3\.1\.0$/,
    );
    expectOneLineError(
      await call('GET', `${base}/3.0.0/devices?next=%7B%7D`),
      400,
      /^Invalid --next cursor "\{\}"/,
    );
  });
});
