/**
 * Issue 11 item 1 at checkin level, on a real local cloud: a device sending 1,023 'a's + '!' against
 * regex policies must not hold other devices' checkins. Before the fix, `s =~ /^(a?){25}a{25}$/` ran
 * on V8's backtracking engine and each such checkin held the whole local cloud for ~3.8 s.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '#functions/tokens.ts';
import { checkin, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startTestCloud();
});

afterAll(async () => {
  await cloud?.dispose();
});

/** Generous for a loaded machine: a checkin answers in milliseconds; behind 4 hostile ones on the old matcher, ~20 s. */
const MAX_NORMAL_CHECKIN_MS = 3000;

it('keeps other checkins flowing while hostile strings meet regex policies', async () => {
  const product = 'regex';
  const { token } = await createToken(cloud.table, { product });
  // Stored as a publish before the fix accepted it; the checkin now refuses to compile it (no match).
  await seedUpdate(cloud, { product, version: '3.0.0', policy: 's =~ /^(a?){25}a{25}$/' });
  // The same shape within the cost limit, accepted at publish.
  const accepted = await seedUpdate(cloud, { product, version: '2.0.0', policy: 's =~ /^(a?){12}a{12}$/' });
  const plain = await seedUpdate(cloud, { product, version: '1.5.0', policy: 'ring == "beta"' });
  const hostile = (n: number) => ({ id: `h${n}`, product, version: '1.0.0', s: `${'a'.repeat(1023)}!` });

  const hostileAnswers = Promise.all([1, 2, 3, 4].map((n) => checkin(cloud, hostile(n), token)));
  const sent = performance.now();
  const normal = await checkin(cloud, { id: 'n1', product, version: '1.0.0', ring: 'beta' }, token);
  const normalMs = performance.now() - sent;

  expect(normal.json.update).toBe(plain.id);
  for (const answer of await hostileAnswers) expect([answer.status, answer.text]).toEqual([200, '{}']);
  expect(normalMs, 'a normal checkin waited behind the hostile ones').toBeLessThan(MAX_NORMAL_CHECKIN_MS);
  // The accepted policy still selects the devices it names.
  const matching = await checkin(cloud, { id: 'm1', product, version: '1.0.0', s: 'a'.repeat(24) }, token);
  expect(matching.json.update).toBe(accepted.id);
});
