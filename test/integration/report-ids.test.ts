/**
 * The update id a report names, as the device sent it: with or without the retry suffix
 * (`<id>:r<n>`, core/rollout.ts), malformed, or long. Never a 5xx; an error names the id sent
 * (at most 60 characters of it, as every device-facing error echoes client input).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshProduct, report, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(async () => {
  await cloud?.dispose();
});

describe('a report naming an unknown update', () => {
  it('is answered 404 naming the id as sent, suffix included, cut to 60 characters', async () => {
    const p = await freshProduct(cloud, 'rid');
    const send = (update: string) => report(cloud, { id: 'd', update, success: false }, p.token);
    const bare = await send(':r1');
    expect([bare.status, bare.text]).toEqual([404, 'Unknown update ":r1"\n']);
    const long = await send(`${'a'.repeat(124)}:r1`);
    expect([long.status, long.text]).toEqual([404, `Unknown update "${'a'.repeat(60)}…"\n`]);
  });
});
