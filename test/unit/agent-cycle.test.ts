/**
 * The agent's cycle as state sequences (STYLE habit 8): the real handlers of cycle.ts, with faults
 * injected where a network would answer (checkin, image transfer, report) and in the apply step, a
 * process "killed" in a state by a handler that throws. Every handler checks that its state is on
 * disk before it runs: the record is persisted before every side effect. No network, fake clock.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '#agent/config.ts';
import { AgentCore } from '#agent/core.ts';
import { HANDLERS, type Handlers, RECOVERY, runCycle } from '#agent/cycle.ts';
import { DownloadRefusedError, HttpStatusError, TransientError } from '#agent/errors.ts';
import { reportThrough } from '#agent/report-states.ts';
import type { AgentStateName, Offer, ReportRecord } from '#agent/state.ts';
import type { CycleOutcome } from '#agent/types.ts';
import { checkInThrough, downloadThrough } from '#agent/update-states.ts';

type Fault =
  | 'checkin-fails'
  | 'downgrade'
  | 'transfer-drops'
  | 'image-too-large'
  | 'bad-digest'
  | 'listener-fails'
  | 'version-not-switched'
  | 'report-fails'
  | 'report-refused'
  | 'asks-exit'
  | 'asks-restart'
  /** The process dies in this state, after it is on disk, before its side effect is over. */
  | `killed-in:${AgentStateName}`;

const IMAGE = Buffer.from('image bytes');
const OFFER: Offer = {
  update: 'upd-1',
  version: '1.1.0',
  url: 'https://images.invalid/upd-1',
  checksum: createHash('sha256').update(IMAGE).digest('hex'),
  size: IMAGE.length,
};

/** A process killed in the middle of a state: the handler never returns. */
class Killed extends Error {}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function config(extra: Partial<AgentConfig> = {}): AgentConfig {
  return {
    ...extra,
    version: '1.0.0',
    enabled: true,
    api: 'https://cloud.invalid',
    token: 't',
    period: 86_400,
    jitter: 0,
    applyTimeout: 60,
    stallTimeout: 5,
    keys: [],
    device: { id: 'dev-1', product: 'demo', properties: { id: 'dev-1', product: 'demo' } },
  };
}

/** A device whose cloud offers OFFER until it runs 1.1.0, with `faults` injected. */
function device(faults: ReadonlySet<Fault>, extra: Partial<AgentConfig> = {}, clock = { now: 1_000_000 }) {
  const stateDir = mkdtempSync(join(tmpdir(), 'agent-cycle-unit-'));
  dirs.push(stateDir);
  let running = '1.0.0';
  const visited: AgentStateName[] = [];
  const sent: ReportRecord[] = [];
  let downloads = 0;
  const faultsLeft = new Set(faults);
  /** A fault fires once: the next cycle (or the restarted process) runs clean. */
  const fault = (f: Fault) => faultsLeft.delete(f);
  const onDisk = (): AgentStateName => JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')).state;
  let core: AgentCore;

  const onlyOnDisk = (table: Handlers): Handlers =>
    Object.fromEntries(
      Object.entries(table).map(([state, handler]) => [
        state,
        (c: AgentCore, cycle: Parameters<typeof handler>[1]) => {
          expect(onDisk(), `state on disk when entering ${state}`).toBe(state);
          if (fault(`killed-in:${state as AgentStateName}`)) throw new Killed();
          return handler(c, cycle);
        },
      ]),
    ) as unknown as Handlers;

  const network: Partial<Handlers> = {
    checking: checkInThrough(async () => {
      if (fault('checkin-fails')) throw new TransientError('connection reset');
      if (running === OFFER.version) return {};
      if (fault('downgrade')) return { offer: { ...OFFER, version: '0.9.0' } };
      return { offer: OFFER };
    }),
    downloading: downloadThrough(async (core, _offer, record) => {
      downloads++;
      writeFileSync(core.imagePath(record), IMAGE);
      if (fault('transfer-drops')) throw new TransientError('socket hang up');
      if (fault('image-too-large'))
        throw new DownloadRefusedError('The server sent more than the offered size');
      return fault('bad-digest') ? '0'.repeat(64) : OFFER.checksum;
    }),
    reporting: reportThrough(async (_core, report) => {
      if (fault('report-fails')) throw new TransientError('connection refused');
      if (fault('report-refused')) throw new HttpStatusError(404, 'Unknown update');
      sent.push(report);
    }),
  };
  const tables = {
    handlers: onlyOnDisk({ ...HANDLERS, ...network }),
    recovery: onlyOnDisk({ ...RECOVERY, reporting: network.reporting! }),
  };

  const start = () => {
    core = new AgentCore(
      {
        config: config(extra),
        stateDir,
        now: () => clock.now,
        random: () => 0,
        runningVersion: () => running,
      },
      {
        state: (change) => visited.push(change.to),
        progress: () => {},
        updateListeners: () => [
          () => {
            if (fault('listener-fails')) return { applied: false, error: 'flash write failed' };
            if (!faults.has('version-not-switched')) running = OFFER.version;
            if (fault('asks-exit')) return { applied: true, action: 'exit' as const };
            if (fault('asks-restart')) return { applied: true, action: 'restart' as const };
            return { applied: true };
          },
        ],
      },
    );
    core.lock();
  };
  start();

  /** One cycle; a Killed handler ends the "process", and the next cycle runs in a new one. */
  const cycle = async (): Promise<CycleOutcome | 'killed'> => (await cycleResult()).outcome;
  const cycleResult = async (): Promise<{ outcome: CycleOutcome | 'killed'; applyAt?: number }> => {
    try {
      return await runCycle(core, new AbortController().signal, tables);
    } catch (err) {
      if (!(err instanceof Killed)) throw err;
      start();
      return { outcome: 'killed' };
    }
  };
  return {
    visited,
    sent,
    cycle,
    cycleResult,
    onDisk,
    restart: start,
    core: () => core,
    downloads: () => downloads,
    running: () => running,
  };
}

const FULL: AgentStateName[] = [
  'checking',
  'downloading',
  'verifying',
  'applying',
  'pending-confirm',
  'reporting',
  'idle',
];
const NOTHING: AgentStateName[] = ['checking', 'idle'];

interface Row {
  readonly name: string;
  readonly faults: readonly Fault[];
  /** Outcome of each cycle run. */
  readonly outcomes: readonly (CycleOutcome | 'killed')[];
  /** Every state entered, over all cycles. */
  readonly states: readonly AgentStateName[];
  /** Reports the cloud took: status of each. */
  readonly reported: readonly string[];
}

function killedIn(
  state: AgentStateName,
  outcomes: Row['outcomes'],
  states: Row['states'],
  reported: Row['reported'],
): Row[] {
  return [
    {
      name: `killed in ${state}: the restart carries on`,
      faults: [`killed-in:${state}`],
      outcomes,
      states,
      reported,
    },
  ];
}

const rows: readonly Row[] = [
  {
    name: 'applied, confirmed and reported',
    faults: [],
    outcomes: ['applied', 'no-update'],
    states: [...FULL, ...NOTHING],
    reported: ['applied'],
  },
  {
    name: 'checkin fails, next cycle applies',
    faults: ['checkin-fails'],
    outcomes: ['error', 'applied'],
    states: [...NOTHING, ...FULL],
    reported: ['applied'],
  },
  {
    name: 'downgrade refused before download',
    faults: ['downgrade'],
    outcomes: ['rejected'],
    states: ['checking', 'reporting', 'idle'],
    reported: ['rejected'],
  },
  {
    name: 'transfer drops: kept, resumed next cycle',
    faults: ['transfer-drops'],
    outcomes: ['error', 'applied'],
    states: ['checking', 'downloading', 'idle', ...FULL],
    reported: ['applied'],
  },
  {
    name: 'image larger than offered: refused',
    faults: ['image-too-large'],
    outcomes: ['failed'],
    states: ['checking', 'downloading', 'reporting', 'idle'],
    reported: ['failed'],
  },
  {
    name: 'checksum mismatch: rejected',
    faults: ['bad-digest'],
    outcomes: ['rejected'],
    states: ['checking', 'downloading', 'verifying', 'reporting', 'idle'],
    reported: ['rejected'],
  },
  {
    name: 'apply fails, then the update is held back',
    faults: ['listener-fails'],
    outcomes: ['failed', 'skipped'],
    states: ['checking', 'downloading', 'verifying', 'applying', 'reporting', 'idle', ...NOTHING],
    reported: ['failed'],
  },
  {
    name: 'version not switched: failed',
    faults: ['version-not-switched'],
    outcomes: ['failed'],
    states: FULL,
    reported: ['failed'],
  },
  {
    name: 'report fails: resent first thing next cycle',
    faults: ['report-fails'],
    outcomes: ['applied', 'no-update'],
    states: [...FULL.slice(0, -1), 'reporting', 'idle', ...NOTHING],
    reported: ['applied'],
  },
  {
    name: 'report refused for good: dropped',
    faults: ['report-refused'],
    outcomes: ['applied'],
    states: FULL,
    reported: [],
  },
  {
    name: 'script asks exit: confirmed on the next start',
    faults: ['asks-exit'],
    outcomes: ['exit', 'no-update'],
    states: [...FULL.slice(0, 5), 'reporting', 'idle', ...NOTHING],
    reported: ['applied'],
  },
  {
    name: 'script asks restart: confirmed at once',
    faults: ['asks-restart'],
    outcomes: ['applied'],
    states: FULL,
    reported: ['applied'],
  },
  ...killedIn('checking', ['killed', 'applied'], ['checking', 'idle', ...FULL], ['applied']),
  ...killedIn(
    'downloading',
    ['killed', 'applied'],
    ['checking', 'downloading', 'idle', ...FULL],
    ['applied'],
  ),
  ...killedIn('verifying', ['killed', 'applied'], [...FULL.slice(0, 3), 'idle', ...FULL], ['applied']),
  // Killed before the listener ran: the old version still runs, so the update failed and is held back.
  ...killedIn('applying', ['killed', 'skipped'], [...FULL, ...NOTHING], ['failed']),
  ...killedIn('pending-confirm', ['killed', 'no-update'], [...FULL, ...NOTHING], ['applied']),
  ...killedIn('reporting', ['killed', 'no-update'], [...FULL, ...NOTHING], ['applied']),
];

describe('agent cycle: state sequences through the real handlers under injected faults', () => {
  it.each(rows)('$name', async (row) => {
    const agent = device(new Set(row.faults));
    const outcomes: (CycleOutcome | 'killed')[] = [];
    for (let i = 0; i < row.outcomes.length; i++) outcomes.push(await agent.cycle());
    expect(outcomes).toEqual(row.outcomes);
    expect(agent.visited).toEqual(row.states);
    expect(agent.sent.map((r) => r.status)).toEqual(row.reported);
    expect(agent.onDisk()).toBe(agent.visited.at(-1));
  });
});

describe('update.apply and update.schedule (Ioto): a verified image waits on disk for its window', () => {
  /** Local time of day `hh:mm` on 2026-03-10 (+ `days`), as the cron patterns read it. */
  const at = (hhmm: string, days = 0) => new Date(`2026-03-${10 + days}T${hhmm}:00`).getTime();

  it('verifies outside the window, waits across cycles and a restart, then applies without downloading again', async () => {
    const clock = { now: at('12:00') };
    const agent = device(new Set(), { apply: '0 3 * * *' }, clock);
    expect(await agent.cycleResult()).toEqual({
      outcome: 'waiting',
      update: OFFER.update,
      version: OFFER.version,
      applyAt: at('03:00', 1),
      reports: [],
    });
    expect(agent.visited).toEqual(['checking', 'downloading', 'verifying', 'waiting']);
    expect(agent.running()).toBe('1.0.0');

    clock.now = at('12:05');
    expect(await agent.cycle()).toBe('waiting');
    agent.restart();
    clock.now = at('02:59', 1);
    expect(await agent.cycle()).toBe('waiting');
    expect(agent.visited).toHaveLength(4);
    expect(agent.core().nextCycleAt()).toBe(at('03:00', 1));

    clock.now = at('03:00', 1) + 30_000;
    expect(await agent.cycle()).toBe('no-update');
    expect(agent.visited.slice(4)).toEqual([
      'verifying',
      'applying',
      'pending-confirm',
      'reporting',
      'idle',
      ...NOTHING,
    ]);
    expect(agent.running()).toBe(OFFER.version);
    expect(agent.downloads()).toBe(1);
    expect(agent.sent.map((r) => r.status)).toEqual(['applied']);
  });

  it('applies at once inside the window', async () => {
    const agent = device(new Set(), { apply: '* 2-4 * * *' }, { now: at('03:30') });
    expect(await agent.cycle()).toBe('applied');
    expect(agent.visited).toEqual(FULL);
  });

  it('rejects an image changed on disk while it waited', async () => {
    const clock = { now: at('12:00') };
    const agent = device(new Set(), { apply: '0 3 * * *' }, clock);
    expect(await agent.cycle()).toBe('waiting');
    const { download } = agent.core().state;
    writeFileSync(agent.core().imagePath(download!), 'other bytes');
    clock.now = at('03:00', 1);
    // Rejected and reported, then the cycle checks in: the update is held back after that failure.
    expect(await agent.cycle()).toBe('skipped');
    expect(agent.visited.slice(4)).toEqual(['verifying', 'reporting', 'idle', ...NOTHING]);
    expect(agent.sent.map((r) => [r.status, r.error])).toEqual([
      ['rejected', expect.stringMatching(/does not match the checksum/)],
    ]);
    expect(agent.running()).toBe('1.0.0');
  });

  it('checks in once the period passed, in the next minute update.schedule allows', () => {
    const clock = { now: at('12:00') };
    const agent = device(new Set(), { schedule: '30 2 * * *' }, clock);
    expect(agent.core().nextCycleAt()).toBe(at('02:30', 1));
    // Due within an allowed minute: at once.
    agent.core().patch({ lastCheckin: at('02:30', 1), nextCheckin: at('02:30', 2) + 1000 });
    clock.now = at('02:31', 1);
    expect(agent.core().nextCycleAt()).toBe(at('02:30', 2) + 1000);
    // Due a minute later: the schedule's next minute is 02:30 on day 3.
    agent.core().patch({ nextCheckin: at('02:31', 2) });
    expect(agent.core().nextCycleAt()).toBe(at('02:30', 3));
  });
});
