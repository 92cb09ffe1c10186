/**
 * Headless Chromium for the console's browser tests: Debian's package (or $CHROMIUM_PATH) driven by
 * playwright-core, which downloads nothing. One page that records every URL it requests and every
 * page error or CSP refusal, and screenshots under test-artifacts/console/.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ROOT = resolve(import.meta.dirname, '../..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

export interface ConsolePage {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  /** Every URL the page requested, in order. */
  readonly requested: string[];
  /** Uncaught page errors and CSP refusals the page logged. */
  readonly pageErrors: string[];
  /** A full-page screenshot, test-artifacts/console/<name>.png. */
  shot(name: string): Promise<Buffer>;
}

export async function launchConsolePage(): Promise<ConsolePage> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext();
  const requested: string[] = [];
  const pageErrors: string[] = [];
  context.on('request', (request) => requested.push(request.url()));
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
  });
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  return { browser, context, page, requested, pageErrors, shot };
}

/**
 * Opens a section from the page's navigation and waits until its view took over: the view's
 * heading takes focus once rendered (console/ui/main.tsx). Until then the old view's fields (the
 * devices view has a "Version" too) take what a test fills, and the move of focus eats keystrokes.
 */
export async function openSection(page: Page, link: string, heading: string): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Sections' })
    .getByRole('link', { name: link, exact: true })
    .click();
  await page.getByRole('heading', { name: heading }).and(page.locator(':focus')).waitFor();
}
