/**
 * Fuzzing the device-facing API (issue 7): ≥ 10,000 generated malformed checkin and report
 * requests against a real local cloud. Every answer is a 4xx with one clear line or a 200;
 * never a 5xx; the cloud still answers a good checkin afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppRequest } from '#functions/app.ts';
import { checkin, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startTestCloud();
  await seedUpdate(cloud, { version: '1.1.0', policy: 'region == "eu" || hw.rev >= 2' });
});

afterAll(async () => {
  await cloud?.dispose();
});

const paths = ['/tok/provision/update', '/tok/provision/updateReport'];
const reserved = ['__proto__', 'constructor', 'prototype'];

/** JSON-ish bodies: mostly near-valid checkins and reports with one thing wrong. */
const key = fc.oneof(
  fc.constantFrom('id', 'product', 'version', 'update', 'success', 'status', 'error', ...reserved),
  fc.string(),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(
      '1.0.0',
      '1.2',
      'v1.0.0',
      '01.0.0',
      '1.0.0-rc.1',
      'demo',
      'true',
      'false',
      'x'.repeat(2000),
    ),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(key, tie('v'), { maxKeys: 4 }),
  ),
})).v;
const nearValid = fc
  .record({
    base: fc.constantFrom(
      { id: 'd1', product: 'demo', version: '1.0.0' },
      { id: 'd1', update: 'nope', success: true },
      { id: 'd1', product: 'demo', version: '1.0.0', region: 'eu', hw: { rev: '3' } },
    ),
    extra: fc.dictionary(key, value, { maxKeys: 3 }),
    drop: fc.option(fc.constantFrom('id', 'product', 'version', 'success', 'update')),
  })
  .map(({ base, extra, drop }) => {
    const body: Record<string, unknown> = { ...base, ...extra };
    if (drop) delete body[drop];
    return Buffer.from(JSON.stringify(body));
  });
const deep = fc
  .integer({ min: 3, max: 200 })
  .map((n) =>
    Buffer.from(`{"id":"d1","product":"demo","version":"1.0.0","a":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
  );
const huge = fc
  .integer({ min: 15_000, max: 40_000 })
  .map((n) => Buffer.from(`{"id":"d1","product":"demo","version":"1.0.0","s":"${'x'.repeat(n)}"}`));
const protoKeys = fc
  .constantFrom(...reserved)
  .map((k) => Buffer.from(`{"id":"d1","product":"demo","version":"1.0.0","${k}":{"polluted":true}}`));
const randomBytes = fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b));
const invalidUtf8 = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom(0xff, 0xc0, 0xed, 0xf8))
  .map(([b, bad]) =>
    Buffer.concat([
      Buffer.from('{"id":"d'),
      Buffer.from(b),
      Buffer.from([bad]),
      Buffer.from('","product":"demo","version":"1.0.0"}'),
    ]),
  );
const truncated = fc
  .tuple(nearValid, fc.nat())
  .map(([body, cut]) => body.subarray(0, body.length ? cut % body.length : 0));

const request = fc.record({
  path: fc.oneof(
    fc.constantFrom(...paths),
    fc.constantFrom('/', '/tok/provision', '/tok/provision/update/x', '/%00'),
  ),
  method: fc.oneof(
    { weight: 8, arbitrary: fc.constant('POST') },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE') },
  ),
  type: fc.option(
    fc.constantFrom(
      'application/json',
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      '',
    ),
  ),
  auth: fc.oneof(
    { weight: 6, arbitrary: fc.constant('good') },
    { weight: 1, arbitrary: fc.constantFrom('none', 'bad', 'bearer-empty') },
  ),
  body: fc.oneof(nearValid, nearValid, deep, huge, protoKeys, randomBytes, invalidUtf8, truncated),
});

it('answers ≥ 10,000 malformed requests with 4xx (or 200), one clear line, never 5xx', async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const headers: Record<string, string> = {};
      if (r.type !== null) headers['content-type'] = r.type;
      if (r.auth === 'good') headers.authorization = `Bearer ${cloud.devToken}`;
      else if (r.auth === 'bad') headers.authorization = 'Bearer not-a-token';
      else if (r.auth === 'bearer-empty') headers.authorization = 'Bearer ';
      const req: AppRequest = { method: r.method, path: r.path, headers, body: r.body };
      const answer = await cloud.app(req);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      expect(answer.status, answer.body).toBeLessThan(500);
      if (answer.status !== 200) {
        expect(answer.body.endsWith('\n')).toBe(true);
        expect(answer.body.trim()).not.toContain('\n');
        expect(answer.body.trim().length).toBeGreaterThan(5);
        expect(answer.body).not.toMatch(/at .*\.ts:\d+|Error:|undefined/);
      }
    }),
    { numRuns: 10_000 },
  );
  // The generator reaches every kind of answer, not one rejection over and over.
  for (const status of [200, 400, 401, 404, 405, 413, 415])
    expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
  // Still healthy, and nothing leaked into Object.prototype.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  const good = await checkin(cloud, { id: 'after-fuzz', product: 'demo', version: '1.0.0', region: 'eu' });
  expect(good.json.version).toBe('1.1.0');
}, 120_000);
