/**
 * The console's device views, publish's "would match" and the edit of phases, in real headless
 * Chromium (Debian's package, driven by playwright-core) against a real local cloud where the real
 * agent updated a device. Controls are found by role and label; screenshots go to
 * test-artifacts/console/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLEET_SCAN_DEVICES, publish } from '#admin/index.ts';
import { openCloud } from '#cli/cloud.ts';
import { keys } from '#functions/keys.ts';
import { onceArgs, runAgent, writeAgentFiles } from '#test/integration/agent-fixtures.ts';
import { type ConsolePage, launchConsolePage, openSection, ROOT } from '#test/support/browser.ts';
import { checkin, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { startTestConsole, type TestConsole } from '#test/support/console.ts';

let cloud: TestCloud;
let web: TestConsole;
let browser: Browser;
let page: Page;
let requested: string[];
let pageErrors: string[];
let shot: ConsolePage['shot'];
/** Dry runs ("would match") in flight now, and the most ever at once. */
const scans = { running: 0, maxRunning: 0 };

/** Publishes 1.2.0 for the "eu" devices, checks in dev-us, and lets the real agent update dev-eu. */
async function fleetWithOneUpdatedDevice(): Promise<void> {
  const local = openCloud('local', { dataDir: cloud.dataDir, outputsFile: join(cloud.dataDir, 'none.json') });
  const image = join(cloud.dataDir, 'fw-1.2.0.bin');
  writeFileSync(image, 'firmware 1.2.0');
  try {
    await publish(local, { product: 'demo', version: '1.2.0', file: image, policy: 'region == "eu"' });
  } finally {
    local.close();
  }
  expect(
    (await checkin(cloud, { id: 'dev-us', product: 'demo', version: '1.0.0', region: 'us' })).status,
  ).toBe(200);
  const device = join(cloud.dataDir, 'device-eu');
  const files = writeAgentFiles(device, {
    api: cloud.apiUrl,
    token: cloud.devToken,
    script: join(ROOT, 'scripts/update'),
    device: { id: 'dev-eu', region: 'eu' },
  });
  const run = await runAgent(join(ROOT, 'bin/updraft-agent.js'), onceArgs(files, join(device, 'state')), {
    cwd: device,
    timeoutMs: 30_000,
  });
  expect(run.code, run.stderr).toBe(0);
  expect(readFileSync(files.ioto, 'utf8')).toMatch(/"version": "1\.2\.0"/);
  await cloud.flush();
}

beforeAll(async () => {
  cloud = await startTestCloud();
  web = await startTestConsole(cloud);
  const [opened] = await Promise.all([launchConsolePage(), fleetWithOneUpdatedDevice()]);
  ({ browser, page, requested, pageErrors, shot } = opened);
  const isScan = (request: { url(): string }) => request.url().endsWith('/policy/match');
  opened.context.on('request', (request) => {
    if (isScan(request)) scans.maxRunning = Math.max(scans.maxRunning, ++scans.running);
  });
  const ended = (request: { url(): string }) => {
    if (isScan(request)) scans.running--;
  };
  opened.context.on('requestfinished', ended);
  opened.context.on('requestfailed', ended);
  await page.goto(web.url);
});

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await cloud?.dispose();
});

const deviceLinks = () =>
  page.getByRole('table', { name: 'Devices of demo' }).getByRole('rowheader').allTextContents();

/** WCAG contrast ratio of two computed `rgb(…)` colors. */
function contrast(a: string, b: string): number {
  const luminance = (color: string) => {
    const [r = 0, g = 0, bl = 0] = (color.match(/\d+(\.\d+)?/g) ?? []).map((c) => {
      const s = Number(c) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

describe('device views in Chromium', () => {
  it('lists devices, filters them by an expression (a broken one shows its column) and by id', async () => {
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('heading', { name: 'Devices of demo' }).waitFor();
    await page.getByRole('rowheader', { name: 'dev-us' }).waitFor();
    expect(await deviceLinks()).toEqual(['dev-eu', 'dev-us']);
    const updated = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'dev-eu' }) });
    // The agent checked in again after applying: the registry holds its new version.
    expect(await updated.getByRole('cell').allTextContents()).toEqual([
      '1.2.0',
      expect.any(String),
      '1.2.0',
      expect.stringMatching(/^Succeeded \d/),
    ]);

    const expression = page.getByLabel('Filter expression');
    await expression.fill('region == "eu" &&');
    const alert = page.getByRole('alert').filter({ hasText: /column 18/ });
    await alert.waitFor();
    expect(await expression.getAttribute('aria-invalid')).toBe('true');
    await expression.fill('region == "us"');
    await alert.waitFor({ state: 'detached' });
    await expression.press('Enter');
    await page.getByRole('status').filter({ hasText: '1 device listed of 2 read' }).waitFor();
    expect(await deviceLinks()).toEqual(['dev-us']);
    await shot('devices-filtered');

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Search device id').fill('dev-e');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('status').filter({ hasText: '1 device listed of 2 read' }).waitFor();
    expect(await deviceLinks()).toEqual(['dev-eu']);
  });

  it("opens a device from the keyboard and shows its update history after the agent's run", async () => {
    await page.getByRole('link', { name: 'dev-eu' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Device dev-eu of demo' }).and(page.locator(':focus')).waitFor();
    const properties = page.getByRole('table', { name: 'Properties' });
    expect(
      await properties
        .getByRole('row', { name: /region/ })
        .getByRole('cell')
        .textContent(),
    ).toBe('eu');
    // The agent's success report moved it to 1.2.0 after its checkin sent 1.0.0: one version shown.
    expect(await page.getByRole('definition').first().textContent()).toBe('1.2.0');
    expect(await properties.getByRole('row', { name: /version/ }).count()).toBe(0);
    const history = page.getByRole('table', { name: 'Update history' });
    const row = history.getByRole('row').filter({ has: page.getByRole('link', { name: '1.2.0' }) });
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells).toEqual([
      expect.stringMatching(/^\d/), // offered
      '—', // the agent reports its outcome only, not the download
      expect.stringMatching(/^applied \d/),
      '—',
    ]);
    await shot('device-detail');
    await page.getByRole('link', { name: 'All devices' }).click();
    await page.getByRole('heading', { name: 'Devices of demo' }).waitFor();
  });

  it('counts the devices a policy would match as it is typed, and labels a broken one', async () => {
    await openSection(page, 'Publish', 'Publish an update');
    await page.getByLabel('Version').fill('1.3.0');
    const policy = page.getByLabel('Policy');
    const count = page.getByRole('status').filter({ hasText: /Would match/ });
    await policy.pressSequentially('region == "eu"');
    await count.filter({ hasText: 'Would match 1 of 2 devices of demo.' }).waitFor();
    await policy.pressSequentially(' || region == "us"');
    await count.filter({ hasText: 'Would match 2 of 2 devices of demo.' }).waitFor();
    expect(await policy.inputValue()).toBe('region == "eu" || region == "us"');
    await policy.fill('region == "eu" ||');
    await page
      .getByRole('alert')
      .filter({ hasText: /column 18/ })
      .waitFor();
    await count.filter({ hasText: 'fix the policy to count its devices' }).waitFor();
    await policy.fill('');
    // The default policy: devices older than 1.3.0.
    await count.filter({ hasText: 'Would match 2 of 2 devices of demo.' }).waitFor();
    await shot('publish-would-match');
  });

  it('labels a bounded scan of a large registry, and scans further from where it stopped', async () => {
    const lastSeen = new Date().toISOString();
    const big = Array.from({ length: FLEET_SCAN_DEVICES + 1 }, (_, i) => {
      const id = `big-${String(i).padStart(5, '0')}`;
      const properties = { id, product: 'big', version: '1.0.0', region: i % 2 === 1 ? 'eu' : 'us' };
      return {
        ...keys.device('big', id),
        version: '1.0.0',
        lastSeen,
        properties: JSON.stringify(properties),
      };
    });
    await cloud.table.putMany(big);
    await page.getByLabel('Product', { exact: true }).fill('big');
    // Each answer is held 1.5 s (a slow registry), so typing with pauses asks again while a scan
    // runs: the page sends one scan at a time, then only the latest question.
    const slowScan = async (route: Route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    };
    await page.route('**/policy/match', slowScan);
    scans.maxRunning = scans.running;
    await page.getByLabel('Policy').fill('region == "');
    await page.getByLabel('Policy').pressSequentially('eu"', { delay: 700 });
    const count = page.getByRole('status').filter({ hasText: /Would match/ });
    await count
      .filter({ hasText: /^Would match at least [\d,]+ of the first [\d,]+ devices of big read/ })
      .waitFor({
        timeout: 30_000,
      });
    expect(await count.textContent()).toMatch(/Bounded scan: stopped after (10,000 devices|5 seconds)/);
    await page.unroute('**/policy/match', slowScan);
    expect(scans.maxRunning).toBe(1);
    await shot('publish-bounded-scan');
    // Each step resumes where the last stopped; the counts add up to the whole registry.
    const complete = count.filter({ hasText: 'Would match 5,000 of 10,001 devices of big.' });
    const further = page.getByRole('button', { name: 'Scan further' });
    for (let step = 0; step < 10 && !(await complete.isVisible()); step++) {
      await further.click();
      // Counting disables the button; it comes back while the registry holds more.
      await complete.or(page.getByRole('button', { name: 'Scan further', disabled: false })).waitFor({
        timeout: 30_000,
      });
    }
    await complete.waitFor();
    await page.getByLabel('Product', { exact: true }).fill('demo');
  }, 90_000);

  it('loads more devices of a large registry from the keyboard, and finds one by its id', async () => {
    await page.getByLabel('Showing product').fill('big');
    await page.getByLabel('Showing product').press('Enter');
    await page.getByRole('link', { name: 'Devices' }).click();
    const listed = page.getByRole('status').filter({ hasText: /devices? listed/ });
    await listed.filter({ hasText: '50 devices listed of 50 read; more remain' }).waitFor();
    await page.getByRole('button', { name: 'Load more' }).focus();
    await page.keyboard.press('Enter');
    await listed.filter({ hasText: '100 devices listed of 100 read; more remain' }).waitFor();
    // The keyboard goes on from the first device added (the button is disabled while it loads).
    const focused = () =>
      page.evaluate("document.activeElement?.tagName + ' ' + document.activeElement?.textContent");
    await expect.poll(focused).toBe('A big-00050');
    const rows = await page
      .getByRole('table', { name: 'Devices of big' })
      .getByRole('rowheader')
      .allTextContents();
    expect(rows.slice(48, 52)).toEqual(['big-00048', 'big-00049', 'big-00050', 'big-00051']);
    await page.getByLabel('Search device id').fill('big-0999');
    await page.getByLabel('Search device id').press('Enter');
    // The search reads from the prefix and stops at the first id past it (big-10000).
    await listed.filter({ hasText: '10 devices listed of 11 read' }).waitFor();
    const found = await page
      .getByRole('table', { name: 'Devices of big' })
      .getByRole('rowheader')
      .allTextContents();
    expect(found).toEqual(Array.from({ length: 10 }, (_, i) => `big-0999${i}`));
    await page.getByLabel('Showing product').fill('demo');
    await page.getByLabel('Showing product').press('Enter');
  });

  it('publishes to the product the header shows, when the header switches product', async () => {
    await openSection(page, 'Publish', 'Publish an update');
    const target = page.getByLabel('Product', { exact: true });
    expect(await target.inputValue()).toBe('demo');
    await page.getByLabel('Showing product').fill('big');
    await page.getByLabel('Showing product').press('Enter');
    await page.getByRole('status').filter({ hasText: 'devices of big' }).waitFor();
    expect(await target.inputValue()).toBe('big');
    await page.getByLabel('Showing product').fill('demo');
    await page.getByLabel('Showing product').press('Enter');
    await expect.poll(() => target.inputValue()).toBe('demo');
  });

  it('shows the product switched to, not a slow answer about the one shown before', async () => {
    // demo's update list answers 1.5 s late; the header switches to big (no updates) meanwhile.
    const slow = async (route: Route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    };
    const demoUpdates = '**/products/demo/updates';
    await page.route(demoUpdates, slow);
    const late = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/products/demo/updates'));
    await openSection(page, 'Updates', 'Updates of demo');
    await page.getByLabel('Showing product').fill('big');
    await page.getByLabel('Showing product').press('Enter');
    await page.getByText('No updates yet').waitFor();
    await late;
    await page.unroute(demoUpdates, slow);
    // Two frames after demo's answer: it would have been drawn by now.
    await page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))');
    expect(await page.getByRole('heading', { name: 'Updates of big' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: '1.2.0' }).count()).toBe(0);
    await page.getByLabel('Showing product').fill('demo');
    await page.getByLabel('Showing product').press('Enter');
    await page.getByRole('link', { name: '1.2.0' }).waitFor();
  });

  it("links an update's granted devices to their history", async () => {
    await page.goto(`${web.origin}/#/updates/1.2.0`);
    await page
      .getByRole('table', { name: 'Devices granted 1.2.0' })
      .getByRole('link', { name: 'dev-eu' })
      .click();
    await page.getByRole('heading', { name: 'Device dev-eu of demo' }).waitFor();
  });

  it('edits phases, gate and start time from the update detail', async () => {
    await page.goto(`${web.origin}/#/updates/1.2.0`);
    await page.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit 1.2.0' });
    await form.getByLabel('Phases', { exact: true }).fill('1%, 100%@24 hrs');
    await form.getByLabel('Gate').fill('success>=95');
    await form.getByRole('button', { name: 'Save changes' }).click();
    expect(await form.getByRole('alert').textContent()).toMatch(/^Invalid --gate/);
    await form.getByLabel('Gate').fill('success>=90%,min=5');
    await form.getByLabel('Start time').fill('2026-01-01T00:00:00Z');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.waitFor({ state: 'detached' });
    await page
      .getByRole('definition')
      .filter({ hasText: '1%,100%@1d from 2026-01-01T00:00:00.000Z' })
      .waitFor();
    expect(await page.getByRole('definition').filter({ hasText: 'success>=90%,min=5' }).count()).toBe(1);
    await page.getByRole('button', { name: 'Edit' }).click();
    expect(await form.getByLabel('Phases', { exact: true }).inputValue()).toBe('1%,100%@1d');
    await shot('edit-phases');
  });

  it('reads in light and dark: the device table and hints keep their contrast', async () => {
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('rowheader', { name: 'dev-us' }).waitFor();
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      const background = String(await page.evaluate('getComputedStyle(document.body).backgroundColor'));
      for (const locator of [page.getByRole('cell').first(), page.getByRole('status').first()]) {
        const color = await locator.evaluate(
          (el) => el.ownerDocument.defaultView?.getComputedStyle(el).color ?? '',
        );
        expect(color).toMatch(/^rgb\(/);
        expect(contrast(color, background), `${scheme}: ${color} on ${background}`).toBeGreaterThanOrEqual(
          4.5,
        );
      }
    }
    await shot('devices-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('made no request to any origin but its own, and no script or CSP errors', () => {
    expect(requested.filter((url) => new URL(url).origin !== web.origin)).toEqual([]);
    expect(requested.some((url) => url.includes('/policy/match'))).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
