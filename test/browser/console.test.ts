/**
 * The console in real headless Chromium (Debian's package, driven by playwright-core) against a
 * real local cloud: publish with a real file, a broken policy's column, the real agent moving an
 * update's counters, chart and device outcomes (and a failing one its failures by reason),
 * devices per version, enable/disable, tokens, and no request to any origin but the console's own. Controls are found by role and label, as a
 * person or a screen reader finds them. Screenshots go to test-artifacts/console/.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteUpdate, publish } from '#admin/index.ts';
import { openCloud } from '#cli/cloud.ts';
import { UPDATE_DEVICES_PAGE } from '#console/ui/pages.ts';
import { REFRESH_MS } from '#console/ui/refresh.ts';
import { countWrites } from '#functions/aggregates.ts';
import { onceArgs, runAgent, writeAgentFiles, writeScript } from '#test/integration/agent-fixtures.ts';
import { type ConsolePage, launchConsolePage, ROOT } from '#test/support/browser.ts';
import { checkin, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { startTestConsole, type TestConsole } from '#test/support/console.ts';
import { createStandInClouds, type StandInClouds } from '#test/support/stand-in-clouds.ts';

let cloud: TestCloud;
/** A second cloud, "east", stands in for a deployed one: the page then shows the cloud switcher. */
let east: StandInClouds;
let web: TestConsole;
let browser: Browser;
let page: Page;
let requested: string[];
let pageErrors: string[];
let shot: ConsolePage['shot'];

beforeAll(async () => {
  cloud = await startTestCloud();
  east = await createStandInClouds(cloud, cloud.dataDir, ['east']);
  Object.assign(process.env, east.env);
  web = await startTestConsole(cloud, { names: ['east'], outputsFile: east.outputsFile });
  const opened = await launchConsolePage();
  ({ browser, page, requested, pageErrors, shot } = opened);
  await opened.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: web.origin });
});

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await cloud?.dispose();
});

/**
 * The day counts of `days` days before today, as daily checkins of `fleet` devices left them: on
 * the first day all ran 0.9.0, then a fifth more each day ran 1.0.0 (only the day items are
 * written: these devices are not in the registry nor in today's counts).
 */
async function seedPastDays(days: number, fleet: number): Promise<void> {
  for (let d = days; d >= 1; d--) {
    const lastSeen = new Date(Date.now() - d * 86_400_000).toISOString();
    const upgraded = ((days - d) * fleet) / (days - 1);
    for (let i = 0; i < fleet; i++) {
      const after = { version: i < upgraded ? '1.0.0' : '0.9.0', lastSeen };
      for (const write of countWrites('demo', `past-${i}`, undefined, after))
        if ('update' in write && write.key.sk.startsWith('Y#'))
          await cloud.table.update(write.key, write.update);
    }
  }
}

describe('console in Chromium', () => {
  it('signs in with the printed URL and drops the secret from the address bar', async () => {
    await checkin(cloud, { id: 'dev-1', product: 'demo', version: '1.0.0' });
    await cloud.flush();
    await page.goto(web.url);
    expect(page.url()).toBe(`${web.origin}/`);
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await page
      .getByRole('img', { name: /per day/ })
      .locator('canvas')
      .waitFor();
    expect(await page.getByRole('cell', { name: '1.0.0', exact: true }).count()).toBe(1);
    const versions = page.getByRole('list', { name: 'Legend of Devices per version per day' });
    expect(await versions.getByRole('listitem').allTextContents()).toEqual([
      '1.0.0: 1 device',
      'All devices seen: 1 device',
    ]);
    await page
      .getByRole('img', {
        name: 'Update requests, deferrals, starts, successes and failures per hour of demo',
      })
      .locator('canvas')
      .waitFor();
    await shot('overview-first');
  });

  it('shows the column of a broken policy as it is typed', async () => {
    await page.getByRole('link', { name: 'Publish' }).click();
    await page.getByLabel('Policy').fill('region == "eu" &&');
    const alert = page.getByRole('alert').filter({ hasText: /column \d+/ });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^Invalid policy: .* at column 18/);
    expect(await page.getByLabel('Policy').getAttribute('aria-invalid')).toBe('true');
    await shot('publish-broken-policy');
    await page.getByLabel('Policy').fill('model == "X1" + "-pro"');
    await page.getByRole('status').filter({ hasText: 'Warning (column 10): "X1" is not a number' }).waitFor();
    await page.getByLabel('Policy').fill('region == "eu"');
    // The warnings go as the policy is fixed.
    await page.getByRole('status').filter({ hasText: 'Policy OK', hasNotText: 'Warning' }).waitFor();
  });

  it('publishes an update through the form with a real file and lists it', async () => {
    const image = randomBytes(2 * 1024 * 1024);
    const file = join(cloud.dataDir, 'firmware-1.2.0.bin');
    writeFileSync(file, image);
    await page.getByLabel('Version').fill('1.2.0');
    await page.getByLabel('Image file').setInputFiles(file);
    await page.getByLabel('Device limit').fill('10');
    await page.getByLabel('Pause when failures exceed (% of reports)').fill('50');
    await page.getByLabel('Only after this many reports').fill('10');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('status').filter({ hasText: 'Published 1.2.0 of demo' }).waitFor();
    expect(await page.getByRole('progressbar', { name: 'Upload progress' }).getAttribute('value')).toBe(
      String(image.length),
    );
    expect(await page.getByText(/^2\.0 MiB of 2\.0 MiB at [\d.]+ [KMG]?i?B\/s$/).count()).toBe(1);
    await shot('publish-done');
    await page.getByRole('link', { name: 'open update 1.2.0' }).click();
    await page.getByRole('heading', { name: 'Update 1.2.0 of demo' }).waitFor();
    expect(await page.getByRole('definition').filter({ hasText: 'firmware-1.2.0.bin' }).textContent()).toBe(
      'images/demo/1.2.0/firmware-1.2.0.bin (2.0 MiB)',
    );
    await page.getByRole('link', { name: 'Updates', exact: true }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: '1.2.0' }) });
    await row.waitFor();
    expect(await row.getByRole('cell').allTextContents()).toEqual(
      expect.arrayContaining([
        'Enabled',
        'region == "eu"',
        'at most 10 devices, pause at 50% failures after 10 reports',
      ]),
    );
    await shot('updates');
  });

  it('says in one line why a publish was refused, even while the file is still uploading', async () => {
    const file = join(cloud.dataDir, 'large.bin');
    writeFileSync(file, randomBytes(16 * 1024 * 1024));
    await page.getByRole('link', { name: 'Publish' }).click();
    await page.getByLabel('Version').fill('1.2.0');
    await page.getByLabel('Image file').setInputFiles(file);
    await page.getByRole('button', { name: 'Publish' }).click();
    const alert = page.getByRole('alert').filter({ hasText: /1\.2\.0/ });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/already/i);
    await page.getByRole('link', { name: 'Updates', exact: true }).click();
  });

  it('shows a rollout move in the update detail without reloading as the real agent updates a device', async () => {
    let loads = 0;
    page.on('load', () => loads++);
    await page.getByRole('link', { name: '1.2.0' }).click();
    await page.getByRole('heading', { name: 'Update 1.2.0 of demo' }).waitFor();
    const hourly = page.getByRole('list', {
      name: 'Legend of Started, succeeded and failed per hour of 1.2.0',
    });
    await hourly.getByText('Succeeded: 0 in 48 h').waitFor();
    await page.getByText('No device was granted 1.2.0 yet.').waitFor();

    const device = join(cloud.dataDir, 'device-eu');
    const files = writeAgentFiles(device, {
      api: cloud.apiUrl,
      token: cloud.devToken,
      script: join(ROOT, 'scripts/update'),
      device: { id: 'dev-eu', region: 'eu' },
    });
    const args = onceArgs(files, join(device, 'state'));
    const run = await runAgent(join(ROOT, 'bin/updraft-agent.js'), args, { cwd: device, timeoutMs: 30_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(files.ioto, 'utf8')).toMatch(/"version": "1\.2\.0"/);

    // Counters, chart and device outcomes change in place: the views poll, the page is not reloaded.
    await page
      .getByText('1 started, 1 succeeded, 0 failed of at most 10')
      .waitFor({ timeout: 3 * REFRESH_MS });
    await hourly.getByText('Succeeded: 1 in 48 h').waitFor({ timeout: 3 * REFRESH_MS });
    expect(await hourly.getByRole('listitem').allTextContents()).toEqual([
      'Started: 1 in 48 h',
      'Succeeded: 1 in 48 h',
      'Failed: 0 in 48 h',
    ]);
    const granted = page.getByRole('table', { name: 'Devices granted 1.2.0' });
    await granted
      .getByRole('row', { name: /dev-eu/ })
      .getByRole('cell', { name: 'succeeded' })
      .waitFor({ timeout: 3 * REFRESH_MS });
    expect(loads).toBe(0);
    expect(await page.getByRole('img', { name: /per hour of 1\.2\.0$/ }).getAttribute('data-drawn')).toBe(
      'light',
    );

    await page.getByRole('link', { name: 'Updates', exact: true }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: '1.2.0' }) });
    await row
      .getByText('1 started, 1 succeeded, 0 failed of at most 10')
      .waitFor({ timeout: 3 * REFRESH_MS });
    await shot('updates-in-progress');
  });

  it('groups a failing agent report by its reason with a count, and the overview shows devices per version', async () => {
    await page.getByRole('link', { name: '1.2.0' }).click();
    await page.getByText('No failures reported.').waitFor();
    const device = join(cloud.dataDir, 'device-eu-2');
    mkdirSync(device, { recursive: true });
    const files = writeAgentFiles(device, {
      api: cloud.apiUrl,
      token: cloud.devToken,
      script: writeScript(device, 'fail.sh', 'echo "flash write failed" >&2\nexit 3'),
      device: { id: 'dev-eu-2', region: 'eu' },
    });
    const args = onceArgs(files, join(device, 'state'));
    const run = await runAgent(join(ROOT, 'bin/updraft-agent.js'), args, { cwd: device, timeoutMs: 30_000 });
    expect(run.code, run.stderr).toBe(1);

    const reasons = page.getByRole('table', { name: 'Failures of 1.2.0 by reason' });
    const reason = reasons.getByRole('row').filter({ hasText: 'flash write failed' });
    await reason.waitFor({ timeout: 3 * REFRESH_MS });
    expect(await reason.getByRole('rowheader').textContent()).toBe(
      'Update script exited with code 3: flash write failed',
    );
    const [count, , latest] = await reason.getByRole('cell').allTextContents();
    expect([count, latest]).toEqual(['1', 'dev-eu-2']);
    // The latest failure's time, in the reader's locale, with the exact ISO time in the markup.
    expect(await reason.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    const hourly = page.getByRole('list', {
      name: 'Legend of Started, succeeded and failed per hour of 1.2.0',
    });
    await hourly.getByText('Failed: 1 in 48 h').waitFor({ timeout: 3 * REFRESH_MS });
    const failed = page
      .getByRole('table', { name: 'Devices granted 1.2.0' })
      .getByRole('row', { name: /dev-eu-2/ });
    await failed.getByRole('cell', { name: 'failed', exact: true }).waitFor({ timeout: 3 * REFRESH_MS });
    await shot('update-in-progress');

    // dev-eu moved to 1.2.0 today: it counts once, on 1.2.0; dev-1 and dev-eu-2 stay on 1.0.0.
    // The six days before, as the daily checkins of 20 devices moving from 0.9.0 to 1.0.0 left them.
    await seedPastDays(6, 20);
    await page.getByRole('link', { name: 'Overview' }).click();
    const versions = page.getByRole('list', { name: 'Legend of Devices per version per day' });
    await versions.getByText('1.2.0: 1 device').waitFor({ timeout: 3 * REFRESH_MS });
    expect(await versions.getByRole('listitem').allTextContents()).toEqual([
      '1.2.0: 1 device',
      '1.0.0: 2 devices',
      '0.9.0: 0 devices',
      'All devices seen: 3 devices',
    ]);
    const checkins = page.getByRole('table', { name: 'Checkins per day' });
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    const row = async (daysAgo: number) =>
      checkins
        .getByRole('row', { name: day(daysAgo) })
        .getByRole('cell')
        .allTextContents();
    expect(await row(0)).toEqual(['3', '1.2.0: 1, 1.0.0: 2']);
    expect(await row(1)).toEqual(['20', '1.0.0: 20']);
    expect(await row(3)).toEqual(['20', '1.0.0: 12, 0.9.0: 8']);
    expect(await row(6)).toEqual(['20', '0.9.0: 20']);
    // Each update's progress names its update (the bars alone did not say which is which).
    const progress = page.getByRole('list', { name: 'Progress per update' }).getByRole('listitem');
    const ofUpdate = progress.filter({ has: page.getByRole('link', { name: '1.2.0', exact: true }) });
    expect(await ofUpdate.getByRole('progressbar', { name: 'Progress of 1.2.0' }).count()).toBe(1);
    await shot('overview');
    await page.getByRole('link', { name: 'Updates', exact: true }).click();
  });

  it('disables and enables an update from its detail', async () => {
    await page.getByRole('link', { name: '1.2.0' }).click();
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('button', { name: 'Enable' }).waitFor();
    expect(await page.getByRole('definition').first().textContent()).toBe('Disabled');
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByRole('button', { name: 'Disable' }).waitFor();
    await shot('update-detail');
  });

  it('edits the policy and removes the limits from the detail', async () => {
    await page.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit 1.2.0' });
    await form.getByLabel('Policy').fill('region == "us"');
    await form.getByLabel('Device limit').fill('');
    await form.getByLabel('Pause when failures exceed (% of reports)').fill('');
    await form.getByLabel('Only after this many reports').fill('');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.waitFor({ state: 'detached' });
    await page.getByRole('definition').filter({ hasText: 'region == "us"' }).waitFor();
    const facts = await page.getByRole('definition').allTextContents();
    expect(facts.slice(1, 3)).toEqual(['region == "us"', 'none']);
    // Without a limit, the progress is against the devices it can reach (below 1.2.0, or moved by it).
    await page.getByText(/^\d+ started, \d+ succeeded, \d+ failed of about \d+ eligible$/).waitFor();
  });

  it('cancels a delete from the keyboard: the confirmation takes focus and Escape closes it', async () => {
    await page.getByRole('button', { name: 'Delete', exact: true }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Delete update 1.2.0?' });
    await dialog.waitFor();
    expect(await dialog.evaluate((el) => el.contains(el.ownerDocument.activeElement))).toBe(true);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await page.getByRole('heading', { name: 'Update 1.2.0 of demo' }).count()).toBe(1);
  });

  it('creates a token, shows its secret once, and revokes it', async () => {
    await page.getByRole('link', { name: 'Tokens' }).click();
    // Focus moves to the new view's heading once it rendered (polled by locator: the page's CSP
    // forbids the eval that waitForFunction polls with).
    await page.getByRole('heading', { name: 'Device tokens of demo' }).and(page.locator(':focus')).waitFor();
    await page.getByLabel('Description').fill('from the browser');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.getByLabel(/New token secret/);
    await secret.waitFor();
    expect(await secret.inputValue()).toMatch(/^udt_/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(await secret.inputValue());
    const row = page.getByRole('row').filter({ hasText: 'from the browser' });
    const id = (await row.getByRole('rowheader').textContent()) ?? '';
    expect(id).toMatch(/^[0-9a-f]{4,}$/);
    await shot('tokens');
    await page.getByRole('button', { name: `Revoke token ${id}` }).click();
    await row.waitFor({ state: 'detached' });
  });

  it('deletes an update after confirmation', async () => {
    await page.goto(`${web.origin}/#/updates/1.2.0`);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete update 1.2.0?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Delete 1.2.0' }).click();
    await page.getByRole('heading', { name: 'Updates of demo' }).waitFor();
    await page.getByText('No updates yet').waitFor();
  });

  it('pauses and resumes a phased rollout from its detail, the status changing in place', async () => {
    const local = openCloud('local', { dataDir: cloud.dataDir, outputsFile: east.outputsFile });
    const image = join(cloud.dataDir, 'phased.bin');
    writeFileSync(image, 'phased firmware');
    const selector = { product: 'demo', version: '1.3.0' };
    try {
      await publish(local, {
        ...selector,
        file: image,
        phases: '1%,10%@24h,100%@48h',
        gate: 'success>=95%,min=20',
      });
      await page.getByRole('link', { name: 'Updates', exact: true }).click();
      const row = page.getByRole('row').filter({ hasText: '1.3.0' });
      await row.getByRole('cell', { name: /^phase 1 of 3 \(1%\), next at / }).waitFor();
      await row.getByRole('link', { name: '1.3.0' }).click();
      await page.getByRole('heading', { name: 'Update 1.3.0 of demo' }).waitFor();
      await page
        .getByRole('definition')
        .filter({ hasText: /^phase 1 of 3 \(1%\), next at / })
        .waitFor();
      expect(
        await page
          .getByRole('definition')
          .filter({ hasText: /95%.*20/ })
          .count(),
      ).toBe(1);
      // A next phase exists, so Advance is offered; no device failed, so Retry failed is not.
      await page.getByRole('button', { name: 'Advance' }).waitFor();
      expect(await page.getByRole('button', { name: 'Retry failed' }).count()).toBe(0);

      await page.getByLabel('Pause reason').fill('watching the first cohort');
      await page.getByRole('button', { name: 'Pause' }).click();
      await page.getByRole('button', { name: 'Resume' }).waitFor();
      const status = page.getByRole('definition').first();
      expect(await status.textContent()).toBe('Paused: watching the first cohort');
      await shot('rollout-paused');
      await page.getByRole('button', { name: 'Resume' }).click();
      await page.getByRole('button', { name: 'Pause' }).waitFor();
      expect(await status.textContent()).toBe('Enabled');

      // Forcing past the gate (no reports yet) asks first, then moves to phase 2 in place.
      await page.getByLabel('even if the gate does not hold').check();
      await page.getByRole('button', { name: 'Advance' }).click();
      await page.getByRole('dialog', { name: 'Advance 1.3.0 past its gate?' }).waitFor();
      await page.getByRole('button', { name: 'Advance anyway' }).click();
      await page
        .getByRole('definition')
        .filter({ hasText: /^phase 2 of 3 \(10%\), next at / })
        .waitFor();
    } finally {
      await deleteUpdate(local, selector);
      local.close();
    }
  });

  it('lists the devices granted an update a page at a time, Load more from the keyboard', async () => {
    const local = openCloud('local', { dataDir: cloud.dataDir, outputsFile: east.outputsFile });
    const image = join(cloud.dataDir, 'paged.bin');
    writeFileSync(image, 'paged firmware');
    const selector = { product: 'demo', version: '1.4.0' };
    const ids = Array.from(
      { length: UPDATE_DEVICES_PAGE + 1 },
      (_, i) => `bulk-${String(i).padStart(2, '0')}`,
    );
    try {
      await publish(local, { ...selector, file: image });
      for (const id of ids)
        expect((await checkin(cloud, { id, product: 'demo', version: '1.0.0' })).json.version).toBe('1.4.0');
      await page.getByRole('link', { name: 'Updates', exact: true }).click();
      await page.getByRole('link', { name: '1.4.0' }).click();
      const table = page.getByRole('table', { name: 'Devices granted 1.4.0' });
      const devices = table.getByRole('rowheader');
      await devices.first().waitFor();
      expect(await devices.allTextContents()).toEqual(ids.slice(0, UPDATE_DEVICES_PAGE));
      await page.getByRole('button', { name: 'Load more' }).focus();
      await page.keyboard.press('Enter');
      // The last page added: the button goes, and focus moves to the first device added.
      await table
        .getByRole('rowheader', { name: ids.at(-1) })
        .and(page.locator(':focus'))
        .waitFor();
      expect(await devices.allTextContents()).toEqual(ids);
      expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
      expect(await table.getByRole('cell', { name: 'pending' }).count()).toBe(ids.length);
    } finally {
      await deleteUpdate(local, selector);
      local.close();
    }
  });

  it('generates a signing key pair: the private key shown once, copied and downloaded', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('button', { name: 'Generate key pair' }).click();
    const secret = page.getByLabel('Private key (shown only now)');
    await secret.waitFor();
    const pem = await secret.inputValue();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    expect(await page.getByText(/shown only once and the console keeps no copy/).count()).toBe(1);
    expect(await page.getByLabel("Public key for the agent's update.keys").inputValue()).toMatch(
      /^[A-Za-z0-9+/]{43}=$/,
    );
    await page.getByRole('button', { name: 'Copy private key' }).click();
    await page.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(pem);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download private key' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('updraft-signing.pem');
    expect(readFileSync(await download.path(), 'utf8')).toBe(pem);
    await shot('keys');
    // Shown once: leaving the view forgets the private key.
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('button', { name: 'Generate key pair' }).waitFor();
    expect(await page.getByLabel('Private key (shown only now)').count()).toBe(0);
  });

  it('switches clouds: the views then show the cloud chosen', async () => {
    const target = openCloud('east', { dataDir: cloud.dataDir, outputsFile: east.outputsFile });
    const image = join(cloud.dataDir, 'east.bin');
    writeFileSync(image, 'firmware for east');
    try {
      await publish(target, { product: 'demo', version: '7.0.0', file: image });
    } finally {
      target.close();
    }
    await page.getByRole('link', { name: 'Updates', exact: true }).click();
    await page.getByText('No updates yet').waitFor();
    const switcher = page.getByRole('combobox', { name: 'Cloud' });
    expect(await switcher.inputValue()).toBe('local');
    await switcher.selectOption('east');
    await page.getByRole('link', { name: '7.0.0' }).waitFor();
    await shot('cloud-east');
    await page.getByRole('link', { name: '7.0.0' }).click();
    // The record itself, which only east holds: the detail asked east for it.
    await page.getByRole('definition').filter({ hasText: 'images/demo/7.0.0/east.bin' }).waitFor();
    expect(requested.some((url) => url.endsWith('/api/clouds/east/products/demo/updates/7.0.0'))).toBe(true);
    await page.getByRole('link', { name: 'Updates', exact: true }).click();
    await switcher.selectOption('local');
    await page.getByText('No updates yet').waitFor();
  });

  it('reads in the dark too, the charts redrawn in its colors as the scheme switches', async () => {
    await page.getByRole('link', { name: 'Overview' }).click();
    const chart = page.getByRole('img', { name: /per day/ });
    await chart.locator('canvas').waitFor();
    expect(await chart.getAttribute('data-drawn')).toBe('light');
    await page.emulateMedia({ colorScheme: 'dark' });
    // Redrawn in place, with no reload or navigation.
    await chart.and(page.locator('[data-drawn="dark"]')).waitFor();
    const background = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(background).toBe('rgb(13, 17, 23)');
    await shot('overview-dark');
  });

  it('follows a move to another view made as the page starts (before its listener was set)', async () => {
    const early = await page.context().newPage();
    early.setDefaultTimeout(10_000);
    try {
      // The hash changes after the first render and before the effects run.
      await early.addInitScript({
        content: `document.addEventListener('DOMContentLoaded', () => { location.hash = '#/keys'; });`,
      });
      await early.goto(`${web.origin}/`);
      await early.getByRole('heading', { name: 'Signing keys' }).waitFor();
    } finally {
      await early.close();
    }
  });

  it('made no request to any origin but its own, and no script or CSP errors', () => {
    expect(requested.length).toBeGreaterThan(5);
    expect(requested.filter((url) => new URL(url).origin !== web.origin)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
