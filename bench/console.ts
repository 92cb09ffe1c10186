/**
 * `console-load` (DESIGN §9): the console's first load, in a fresh headless Chromium context (no
 * cache), from navigation to its chart drawn, vs a static page from the same server with the same
 * cookie. The detail carries the bundle's gzipped size beside its budget.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { openCloud } from '#cli/cloud.ts';
import { BUNDLE_BUDGET_BYTES, buildUi, bundleSize } from '#console/assets.ts';
import { startConsole } from '#console/index.ts';
import { checkin, startTestCloud } from '#test/support/cloud.ts';
import { type BenchRow, type BenchSuite, unmeasured } from './row.ts';

const NAME = 'console-load';
const UNIT = 'ms';
const BASELINE = 'a static page from the same server';
const RUNS = 9;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STATIC_PAGE = '<!doctype html><html lang="en"><title>static</title><p>Static page</p></html>';
const quiet = { info() {}, warn() {}, error() {} };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Milliseconds from navigation to `ready` resolving, in a new context with only the cookie. */
async function coldLoad(
  browser: Browser,
  origin: string,
  cookie: { name: string; value: string },
  path: string,
  ready: (page: import('playwright-core').Page) => Promise<unknown>,
): Promise<number> {
  const context = await browser.newContext();
  await context.addCookies([{ ...cookie, url: origin }]);
  const page = await context.newPage();
  const start = performance.now();
  await page.goto(`${origin}${path}`);
  await ready(page);
  const elapsed = performance.now() - start;
  await context.close();
  return elapsed;
}

export const suite: BenchSuite = async (): Promise<BenchRow[]> => {
  const assetsDir = mkdtempSync(join(tmpdir(), 'updraft-console-bench-'));
  const cloud = await startTestCloud();
  const target = openCloud('local', {
    dataDir: cloud.dataDir,
    outputsFile: join(cloud.dataDir, 'none.json'),
  });
  let browser: Browser | undefined;
  const stops: (() => Promise<void>)[] = [];
  try {
    await buildUi(assetsDir);
    writeFileSync(join(assetsDir, 'static.html'), STATIC_PAGE);
    const size = bundleSize(assetsDir);
    // A device seen today, so the overview draws its charts.
    await checkin(cloud, { id: 'bench-1', product: 'demo', version: '1.0.0' });
    await cloud.flush();
    const web = await startConsole({
      clouds: [target],
      defaultProduct: 'demo',
      port: 0,
      assetsDir,
      log: quiet,
    });
    stops.push(web.stop);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const cookie = { name: `updraft-console-${web.port}`, value: web.secret };
    const consoleRuns: number[] = [];
    const staticRuns: number[] = [];
    // One warm-up of each, then alternate so both see the same machine load.
    for (let i = 0; i <= RUNS; i++) {
      // The overview's two charts: devices per version per day and the hourly series.
      const chart = await coldLoad(browser, web.origin, cookie, '/', async (page) => {
        await page.locator('.chart[data-drawn] canvas').nth(1).waitFor();
      });
      const plain = await coldLoad(browser, web.origin, cookie, '/assets/static.html', (page) =>
        page.getByText('Static page').waitFor(),
      );
      if (i === 0) continue;
      consoleRuns.push(chart);
      staticRuns.push(plain);
    }
    return [
      {
        name: NAME,
        value: median(consoleRuns),
        unit: UNIT,
        baseline: BASELINE,
        baselineValue: median(staticRuns),
        better: 'lower',
        detail: `median of ${RUNS} cold loads to the charts drawn; bundle ${(size / 1024).toFixed(1)} KiB gzipped JS+CSS of a ${BUNDLE_BUDGET_BYTES / 1024} KiB budget`,
      },
    ];
  } catch (error) {
    return [unmeasured(NAME, UNIT, BASELINE, 'lower', (error as Error).message)];
  } finally {
    await browser?.close();
    for (const stop of stops) await stop();
    target.close();
    await cloud.dispose();
    rmSync(assetsDir, { recursive: true, force: true });
  }
};
