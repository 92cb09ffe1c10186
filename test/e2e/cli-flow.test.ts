/**
 * The real `updraft` binary against a local cloud started here: the builder's whole flow, a 50 MB
 * image round trip, signed manifests, tokens, stats and the policy dry run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Manifest, verifyManifest } from '#core/manifest.ts';
import type { UpdateRecord } from '#core/types.ts';
import { createToken } from '#functions/tokens.ts';
import { checkin, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { updraftOnLocalCloud } from './cli-helpers.ts';

let cloud: TestCloud;
let work: string;

const { updraft, updraftJson } = updraftOnLocalCloud(() => cloud.dataDir);

function imageFile(name: string, bytes: Buffer): string {
  const file = join(work, name);
  writeFileSync(file, bytes);
  return file;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-cli-'));
});

afterAll(async () => {
  await cloud?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('updraft CLI against the local cloud', { timeout: 90_000 }, () => {
  it('publish → list → show → checkin → disable → enable → edit → delete', async () => {
    const image = randomBytes(64 * 1024);
    const file = imageFile('flow.bin', image);
    const published = await updraftJson<UpdateRecord>(
      'publish',
      '--product',
      'demo',
      '--version',
      '1.1.0',
      '--file',
      file,
      '--description',
      'first update',
    );
    expect(published).toMatchObject({
      product: 'demo',
      version: '1.1.0',
      size: image.length,
      checksum: sha256(image),
      key: 'images/demo/1.1.0/flow.bin',
      enabled: true,
    });
    expect(published.id).toMatch(/^[a-z2-7]{10}$/);

    const listed = await updraftJson<UpdateRecord[]>('list', '--product', 'demo');
    expect(listed.map((u) => [u.version, u.id])).toEqual([['1.1.0', published.id]]);
    const table = await updraft('list', '--product', 'demo');
    expect(table.stdout).toMatch(/^VERSION\s+ID\s+STATUS/);
    expect(table.stdout).toContain(`1.1.0    ${published.id}  enabled  (default)`);

    const shown = await updraft('show', '--product', 'demo', '--version', '1.1.0');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`SHA-256:     ${sha256(image)}`);
    expect(shown.stdout).toContain('Description: first update');

    const device = { id: 'd1', product: 'demo', version: '1.0.0' };
    const offered = await checkin(cloud, device);
    expect(offered.status).toBe(200);
    expect(offered.json).toMatchObject({ update: published.id, version: '1.1.0', checksum: sha256(image) });
    expect((await download(String(offered.json.url))).equals(image)).toBe(true);

    const disabled = await updraftJson<UpdateRecord>('disable', '--product', 'demo', '--version', '1.1.0');
    expect(disabled).toMatchObject({ id: published.id, enabled: false });
    expect((await checkin(cloud, device)).text).toBe('{}');

    expect((await updraft('enable', '--product', 'demo', '--version', '1.1.0')).code).toBe(0);
    expect((await checkin(cloud, device)).json.update).toBe(published.id);

    const edited = await updraftJson<UpdateRecord>(
      'edit',
      '--product',
      'demo',
      '--version',
      '1.1.0',
      '--policy',
      'region == "eu"',
      '--limit',
      '10',
    );
    expect(edited).toMatchObject({ policy: 'region == "eu"', limit: 10, description: 'first update' });
    expect((await checkin(cloud, device)).text).toBe('{}');
    expect((await checkin(cloud, { ...device, region: 'eu' })).json.update).toBe(published.id);
    const unlimited = await updraftJson<UpdateRecord>(
      'edit',
      '--product',
      'demo',
      '--version',
      '1.1.0',
      '--limit',
      'none',
    );
    expect(unlimited.limit).toBeUndefined();
    expect(unlimited.policy).toBe('region == "eu"');

    // Arithmetic that can never succeed is published with a warning, and it no longer matches
    // devices that lack the property (a failed sum used to be null, equal to the missing model).
    const footgun = await updraft(
      'edit',
      '--product',
      'demo',
      '--version',
      '1.1.0',
      '--policy',
      'model == "X1" + "-pro"',
      '--json',
    );
    expect(footgun.code).toBe(0);
    const fails = 'is not a number, so this arithmetic always fails (an evaluation error: no match)';
    expect(footgun.stderr).toBe(
      `updraft: warning: policy column 10: "X1" ${fails}\nupdraft: warning: policy column 17: "-pro" ${fails}\n`,
    );
    expect((await checkin(cloud, { ...device, region: 'eu' })).text).toBe('{}');

    const deleted = await updraft('delete', '--product', 'demo', '--version', '1.1.0');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`Deleted demo 1.1.0 (update ${published.id})`);
    expect(await updraftJson('list', '--product', 'demo')).toEqual([]);
    expect((await checkin(cloud, { ...device, region: 'eu' })).text).toBe('{}');
    expect((await fetch(String(offered.json.url))).status).toBe(404);

    // The version is free again once deleted.
    const again = await updraft('publish', '--product', 'demo', '--version', '1.1.0', '--file', file);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Published demo 1\.1\.0 to local: update [a-z2-7]{10}, 65536 bytes/);
  });

  it('round-trips a 50 MB image byte-exact through publish and the presigned URL', async () => {
    const image = randomBytes(50 * 1024 * 1024);
    const file = imageFile('big.bin', image);
    const { token } = await createToken(cloud.table, { product: 'big' });
    const published = await updraftJson<UpdateRecord>(
      'publish',
      '--product',
      'big',
      '--version',
      '2.0.0',
      '--file',
      file,
    );
    expect(published.size).toBe(image.length);
    expect(published.checksum).toBe(sha256(image));
    const offered = await checkin(cloud, { id: 'b1', product: 'big', version: '1.0.0' }, token);
    expect(offered.json).toMatchObject({ update: published.id, size: image.length, checksum: sha256(image) });
    const body = await download(String(offered.json.url));
    expect(body.length).toBe(image.length);
    expect(sha256(body)).toBe(sha256(image));
  });

  it('signs the manifest with a key from keys generate; any changed field breaks it', async () => {
    const keyFile = join(work, 'signing.pem');
    const keysOut = await updraftJson<{ publicKey: string; privateKeyFile: string }>(
      'keys',
      'generate',
      '--out',
      keyFile,
    );
    expect(keysOut.privateKeyFile).toBe(keyFile);
    expect(keysOut.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const again = await updraft('keys', 'generate', '--out', keyFile);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`updraft: ${keyFile} exists: remove it or choose another --out\n`);

    const image = randomBytes(4096);
    const { token } = await createToken(cloud.table, { product: 'signed' });
    const published = await updraftJson<UpdateRecord>(
      'publish',
      '--product',
      'signed',
      '--version',
      '3.0.0',
      '--file',
      imageFile('signed.bin', image),
      '--sign-key',
      keyFile,
    );
    const offered = await checkin(cloud, { id: 's1', product: 'signed', version: '2.0.0' }, token);
    expect(offered.json.signature).toBe(published.signature);
    const manifest: Manifest = {
      product: 'signed',
      version: '3.0.0',
      sha256: String(offered.json.checksum),
      size: Number(offered.json.size),
      allowDowngrade: false,
    };
    const signature = String(offered.json.signature);
    expect(verifyManifest(manifest, signature, [keysOut.publicKey])).toBe(true);
    const changed: Manifest[] = [
      { ...manifest, product: 'signed2' },
      { ...manifest, version: '3.0.1' },
      { ...manifest, sha256: sha256(Buffer.from('other')) },
      { ...manifest, size: manifest.size + 1 },
      { ...manifest, allowDowngrade: true },
    ];
    for (const m of changed) expect(verifyManifest(m, signature, [keysOut.publicKey])).toBe(false);
    const otherKey = await updraftJson<{ publicKey: string }>('keys', 'generate');
    expect(verifyManifest(manifest, signature, [otherKey.publicKey])).toBe(false);
  });

  it('creates, lists and revokes tokens', async () => {
    const created = await updraftJson<{ token: string; id: string; device: string }>(
      'token',
      'create',
      '--product',
      'tok',
      '--device',
      't1',
    );
    expect(created.token).toMatch(/^udt_/);
    expect(created.device).toBe('t1');
    const listed = await updraftJson<{ id: string; product: string }[]>('token', 'list', '--product', 'tok');
    expect(listed).toEqual([expect.objectContaining({ id: created.id, product: 'tok', device: 't1' })]);
    expect(JSON.stringify(listed)).not.toContain(created.token);

    const revoked = await updraft('token', 'revoke', created.id);
    expect(revoked).toMatchObject({ code: 0, stdout: `Revoked token ${created.id}.\n` });
    expect(await updraftJson('token', 'list', '--product', 'tok')).toEqual([]);
    const refused = await checkin(cloud, { id: 't1', product: 'tok', version: '1.0.0' }, created.token);
    expect(refused.status).toBe(401);
    const unknown = await updraft('token', 'revoke', created.id);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`No single token with id ${created.id}`);
  });

  it('reports devices per version and dry-runs a policy against the registry', async () => {
    const { token } = await createToken(cloud.table, { product: 'fleet' });
    const devices = [
      { id: 'f1', version: '1.0.0', region: 'eu' },
      { id: 'f2', version: '1.0.0', region: 'us' },
      { id: 'f3', version: '1.1.0', region: 'eu' },
    ];
    for (const d of devices)
      expect((await checkin(cloud, { ...d, product: 'fleet' }, token)).status).toBe(200);
    await cloud.flush(); // the local cloud writes registry entries in batches, once a second

    const stats = await updraftJson<{ devices: number; versions: { version: string; devices: number }[] }>(
      'stats',
      '--product',
      'fleet',
    );
    expect(stats.devices).toBe(3);
    expect(stats.versions.map((v) => [v.version, v.devices])).toEqual([
      ['1.1.0', 1],
      ['1.0.0', 2],
    ]);
    const hourly = await updraft('stats', '--product', 'fleet', '--hours', '2');
    const today = new Date().toISOString().slice(0, 10);
    expect(hourly.stdout).toContain('Hourly, product (last 2 hours)');
    expect(hourly.stdout).toMatch(
      new RegExp(
        `Devices seen per day\\n\\s+DAY\\s+DEVICES\\s+BY VERSION\\n\\s+${today}\\s+3\\s+1\\.0\\.0: 2, 1\\.1\\.0: 1\\n`,
      ),
    );
    expect(hourly.stdout).toMatch(/T\d\d:00\s+3\s+0\s+0\s+0\s+0\n/); // this hour: 3 requests
    const backfilled = await updraft('stats', '--product', 'fleet', '--backfill', '--json');
    expect(backfilled.stderr).toContain('Backfilled fleet: counted 0 of 3 devices');
    expect(JSON.parse(backfilled.stdout)).toMatchObject({
      devices: 3,
      hours: 24,
      seen: [{ day: today, devices: 3 }],
    });

    const dryRun = await updraftJson<{
      ok: boolean;
      matched: number;
      devices: number;
      sample: { id: string }[];
    }>(
      'policy',
      'check',
      'region == "eu" && semver(version, "<", newVersion)',
      '--product',
      'fleet',
      '--new-version',
      '1.1.0',
    );
    expect(dryRun).toMatchObject({ ok: true, terms: 6, matched: 1, devices: 3 });
    expect(dryRun.sample).toEqual([{ id: 'f1', version: '1.0.0' }]);
    const human = await updraft('policy', 'check', 'region == "eu"', '--product', 'fleet');
    expect(human.stdout).toContain('Would match 2 of 3 devices of fleet');
  });
});
