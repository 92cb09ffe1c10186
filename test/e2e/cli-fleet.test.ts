/**
 * The real `updraft` binary over a fleet (issue 13): the device list a page at a time, one
 * device's history, failure reasons in `show`, and a dry run cut by its bound and resumed, with
 * its progress on a terminal.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '#functions/tokens.ts';
import { checkin, report, seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { errorLines, updraftOnLocalCloud } from './cli-helpers.ts';

let cloud: TestCloud;
const product = 'fleetcli';
const ids = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];

const { updraft, updraftJson } = updraftOnLocalCloud(() => cloud.dataDir);

beforeAll(async () => {
  cloud = await startTestCloud();
  const { token } = await createToken(cloud.table, { product });
  const update = await seedUpdate(cloud, { product, version: '2.0.0' });
  for (const [i, id] of ids.entries()) {
    const dev = { id, product, version: '1.0.0', region: i % 2 ? 'us' : 'eu' };
    expect((await checkin(cloud, dev, token)).json.update).toBe(update.id);
  }
  await cloud.flush(); // registry entries are written in batches
  expect(
    (await report(cloud, { id: 'd2', update: update.id, status: 'downloaded', success: true }, token)).status,
  ).toBe(200);
  expect(
    (await report(cloud, { id: 'd2', update: update.id, success: false, error: 'no space left' }, token))
      .status,
  ).toBe(200);
  expect((await report(cloud, { id: 'd3', update: update.id, success: true }, token)).status).toBe(200);
});

afterAll(async () => {
  await cloud?.dispose();
});

interface Page {
  devices: { id: string; lastUpdate: { outcome: string } | null }[];
  next?: string;
}

describe('updraft devices, device show, show and the dry run', { timeout: 60_000 }, () => {
  it('lists devices a page at a time and refuses a bad cursor in one line', async () => {
    const first = await updraftJson<Page>('devices', '--product', product, '--limit', '4');
    expect(first.devices.map((d) => d.id)).toEqual(['d1', 'd2', 'd3', 'd4']);
    expect(first.devices[1]?.lastUpdate?.outcome).toBe('failure');
    expect(first.next).toBeDefined();
    const rest = await updraftJson<Page>(
      'devices',
      '--product',
      product,
      '--limit',
      '4',
      '--next',
      first.next ?? '',
    );
    expect(rest.devices.map((d) => d.id)).toEqual(['d5', 'd6']);
    expect(rest.next).toBeUndefined();
    const found = await updraftJson<Page>('devices', '--product', product, '--id-prefix', 'd5');
    expect(found.devices.map((d) => d.id)).toEqual(['d5']);

    const text = await updraft('devices', '--product', product, '--where', 'region == "eu"', '--limit', '2');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^DEVICE +VERSION +LAST SEEN +LAST UPDATE +OUTCOME\nd1 +1\.0\.0 /);
    expect(text.stdout).toContain('d3');
    expect(text.stdout).toMatch(
      /More: updraft devices --product fleetcli --where 'region == "eu"' --limit 2 --next \S+/,
    );

    const bad = await updraft('devices', '--product', product, '--next', 'garbage!');
    expect(bad.code).toBe(1);
    expect(errorLines(bad)).toEqual([
      expect.stringMatching(/^updraft: Invalid --next cursor "garbage!": pass/),
    ]);
  });

  it('shows a device history and the update failures by reason', async () => {
    const shown = await updraft('device', 'show', '--product', product, '--id', 'd2');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(
      'Properties: {"id":"d2","product":"fleetcli","version":"1.0.0","region":"us"}',
    );
    expect(shown.stdout).toMatch(/2\.0\.0 +\S+ +offered +\S+/);
    expect(shown.stdout).toMatch(/downloaded +\S+\n.*failed +\S+ +no space left/);

    const update = await updraft('show', '--product', product, '--version', '2.0.0');
    expect(update.stdout).toMatch(
      /Failure reasons\n +DEVICES +LAST +LATEST DEVICES +ERROR\n +1 +\S+ +d2 +no space left/,
    );
    const json = await updraftJson<{ failures: unknown[] }>(
      'show',
      '--product',
      product,
      '--version',
      '2.0.0',
    );
    expect(json.failures).toEqual([expect.objectContaining({ error: 'no space left', devices: 1 })]);
  });

  it('cuts a dry run at its bound, says how to resume, and resumes it', async () => {
    const policy = 'region == "eu"';
    const cut = await updraftJson<{ scanned: number; matched: number; complete: boolean; next?: string }>(
      'policy',
      'check',
      policy,
      '--product',
      product,
      '--scan-limit',
      '4',
    );
    expect(cut).toMatchObject({ scanned: 4, matched: 2, complete: false });
    const resumed = await updraftJson<{ scanned: number; matched: number; complete: boolean; next?: string }>(
      'policy',
      'check',
      policy,
      '--product',
      product,
      '--next',
      cut.next ?? '',
    );
    expect(resumed).toMatchObject({ scanned: 2, matched: 1, complete: true });
    expect(resumed.next).toBeUndefined();

    const text = await updraft('policy', 'check', policy, '--product', product, '--scan-limit', '4');
    expect(text.stdout).toContain('Would match 2 of the first 4 devices of fleetcli');
    expect(text.stdout).toMatch(
      /Partial: the scan stopped at its bound of 4 devices; continue with:\n {2}updraft policy check 'region == "eu"' --product fleetcli --scan-limit 4 --next \S+/,
    );
    expect(text.stderr).toBe(''); // no progress when stderr is not a terminal
  });

  it('shows the dry run progress on a terminal', async () => {
    // script(1) runs the CLI on a pseudo-terminal, as a builder's shell would.
    const bin = fileURLToPath(new URL('../../bin/updraft.js', import.meta.url));
    const command = `${process.execPath} ${bin} policy check 'region == "eu"' --product ${product} --scan-limit 4`;
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        'script',
        ['-qec', command, '/dev/null'],
        { env: { ...process.env, UPDRAFT_DATA: cloud.dataDir } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(output).toContain('\rScanned 4 devices…');
    expect(output).toContain('Would match 2 of the first 4 devices');
  });
});
