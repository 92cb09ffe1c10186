/** The real `updraft` binary: publish with phases, see the phase in show/list, control the rollout. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { errorLines, runUpdraft } from './cli-helpers.ts';

let cloud: TestCloud;
let work: string;

const updraft = (...args: string[]) => runUpdraft(args, { UPDRAFT_DATA: cloud.dataDir });

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-rollout-'));
});
afterAll(async () => {
  await cloud?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('updraft rollout', { timeout: 90_000 }, () => {
  it('publishes phases, shows where they stand, and pauses, resumes and advances them', async () => {
    const file = join(work, 'image.bin');
    writeFileSync(file, 'image');
    const sel = ['--product', 'staged', '--version', '2.0.0'];
    const start = new Date(Date.now() + 3_600_000).toISOString();

    const bad = await updraft('publish', ...sel, '--file', file, '--phases', '10%,5%@1d');
    expect(bad.code).toBe(1);
    expect(errorLines(bad)).toEqual([
      'updraft: --phases percentages must increase: phase 2 has 5% after 10%',
    ]);

    const published = await updraft(
      'publish',
      ...sel,
      '--file',
      file,
      '--phases',
      '1%, 10%@24 hrs, 100%@2d',
      '--gate',
      'success>=95%,min=20',
      '--start-at',
      start,
    );
    expect(published.stderr).toBe('');
    const shown = await updraft('show', ...sel);
    expect(shown.stdout).toContain('Phases:      1%,10%@1d,100%@2d from ');
    expect(shown.stdout).toContain('Gate:        success>=95%,min=20');
    expect(shown.stdout).toMatch(/Phase: +not started \(begins \d{4}-/);

    const advanced = await updraft('rollout', 'advance', ...sel);
    expect(advanced.stdout).toMatch(
      /^Advanced staged 2\.0\.0 \(update \w+\): enabled; phase: phase 1 of 3 \(1%\), next at /,
    );
    const gated = await updraft('rollout', 'advance', ...sel);
    expect([gated.code, errorLines(gated)]).toEqual([
      1,
      [
        'updraft: Phase 2 waits on its gate (success>=95%,min=20): 0 of 0 reports succeeded; pass --force to advance anyway',
      ],
    ]);
    const forced = await updraft('rollout', 'advance', ...sel, '--force');
    expect(forced.stdout).toContain('phase: phase 2 of 3 (10%), next at ');

    const paused = await updraft('rollout', 'pause', ...sel, '--reason', 'field reports');
    expect(paused.stdout).toMatch(/: paused \(field reports\); phase: phase 2 of 3/);
    const list = await updraft('list', '--product', 'staged');
    expect(list.stdout).toMatch(/PHASE/);
    expect(list.stdout).toMatch(/2\.0\.0 .* paused .* phases 1%,10%@1d,100%@2d +phase 2 of 3 \(10%\)/);
    // --json carries where the phases stand, as the console's list and show do.
    const shownJson = JSON.parse((await updraft('show', ...sel, '--json')).stdout);
    expect(shownJson).toMatchObject({ phase: 1, phaseStatus: { index: 1, percentage: 10 }, failures: [] });
    const listJson = JSON.parse((await updraft('list', '--product', 'staged', '--json')).stdout);
    expect(listJson[0]).toMatchObject({ version: '2.0.0', phaseStatus: { index: 1, percentage: 10 } });
    const resumed = await updraft('rollout', 'resume', ...sel, '--json');
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      update: { paused: false, phase: 1 },
      phase: { index: 1 },
    });

    const retry = await updraft('rollout', 'retry-failed', ...sel);
    expect(errorLines(retry)).toEqual([
      "updraft: No device's last report of staged 2.0.0 failed: nothing to retry",
    ]);
  });
});
