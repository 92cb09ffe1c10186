import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateDirError, StateLockedError } from '#agent/errors.ts';
import { bootId, identify, processStartTime } from '#agent/proc.ts';
import {
  type AgentEvent,
  type AgentStateName,
  InvalidTransitionError,
  initialState,
  nextState,
  parseLock,
  STATE_FORMAT,
  STATES,
  StateStore,
  TRANSITIONS,
} from '#agent/state.ts';

/** Runs events from `start`, returning every state entered. */
function run(start: AgentStateName, events: readonly AgentEvent[]): AgentStateName[] {
  const seen: AgentStateName[] = [];
  let state = start;
  for (const event of events) {
    state = nextState(state, event);
    seen.push(state);
  }
  return seen;
}

describe('transition table: state sequences', () => {
  const sequences: [string, AgentStateName, AgentEvent[], AgentStateName[]][] = [
    ['no update', 'idle', ['checkin', 'no-update'], ['checking', 'idle']],
    ['checkin fails', 'idle', ['checkin', 'checkin-failed'], ['checking', 'idle']],
    ['held-back update skipped', 'idle', ['checkin', 'skip'], ['checking', 'idle']],
    [
      'update applied and confirmed',
      'idle',
      ['checkin', 'offer', 'downloaded', 'verified', 'applied', 'confirmed', 'reported'],
      ['checking', 'downloading', 'verifying', 'applying', 'pending-confirm', 'reporting', 'idle'],
    ],
    [
      'unsigned offer refused before download',
      'idle',
      ['checkin', 'refuse', 'reported'],
      ['checking', 'reporting', 'idle'],
    ],
    [
      'download drops for good: partial kept',
      'idle',
      ['checkin', 'offer', 'download-failed'],
      ['checking', 'downloading', 'idle'],
    ],
    [
      'disk full while downloading',
      'idle',
      ['checkin', 'offer', 'download-refused', 'reported'],
      ['checking', 'downloading', 'reporting', 'idle'],
    ],
    [
      'checksum mismatch',
      'idle',
      ['checkin', 'offer', 'downloaded', 'rejected', 'reported'],
      ['checking', 'downloading', 'verifying', 'reporting', 'idle'],
    ],
    [
      'script fails',
      'idle',
      ['checkin', 'offer', 'downloaded', 'verified', 'apply-failed', 'reported'],
      ['checking', 'downloading', 'verifying', 'applying', 'reporting', 'idle'],
    ],
    [
      'report retried until delivered',
      'idle',
      ['checkin', 'refuse', 'report-failed', 'report-failed', 'reported'],
      ['checking', 'reporting', 'reporting', 'reporting', 'idle'],
    ],
    [
      'verified outside the apply window: waits, verified again when it opens',
      'idle',
      ['checkin', 'offer', 'downloaded', 'deferred', 'window-open', 'verified'],
      ['checking', 'downloading', 'verifying', 'waiting', 'verifying', 'applying'],
    ],
    ['killed while checking', 'checking', ['interrupted'], ['idle']],
    [
      'killed while downloading: resumes from idle',
      'downloading',
      ['interrupted', 'checkin', 'offer'],
      ['idle', 'checking', 'downloading'],
    ],
    ['killed while verifying', 'verifying', ['interrupted'], ['idle']],
    [
      'killed while applying: confirmed on restart',
      'applying',
      ['interrupted', 'confirmed', 'reported'],
      ['pending-confirm', 'reporting', 'idle'],
    ],
    [
      'script asked to exit: confirmed on restart',
      'pending-confirm',
      ['confirmed', 'reported'],
      ['reporting', 'idle'],
    ],
  ];

  it.each(sequences)('%s', (_name, start, events, expected) => {
    expect(run(start, events)).toEqual(expected);
  });

  it('refuses every event the table does not list, naming state and event', () => {
    const events = new Set(Object.values(TRANSITIONS).flatMap((row) => Object.keys(row))) as Set<AgentEvent>;
    let refused = 0;
    for (const state of STATES) {
      for (const event of events) {
        if (TRANSITIONS[state][event]) continue;
        expect(() => nextState(state, event)).toThrow(InvalidTransitionError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(50);
    expect(() => nextState('idle', 'applied')).toThrow(
      'Invalid agent transition: event "applied" in state "idle"',
    );
  });

  it('leads back to idle from every state, so no state is a trap', () => {
    for (const start of STATES) {
      const seen = new Set<AgentStateName>([start]);
      const queue = [start];
      while (queue.length > 0) {
        for (const to of Object.values(TRANSITIONS[queue.shift()!])) {
          if (to && !seen.has(to)) {
            seen.add(to);
            queue.push(to);
          }
        }
      }
      expect(seen.has('idle'), start).toBe(true);
    }
  });

  it('reaches every state from idle', () => {
    const reached = new Set(Object.values(TRANSITIONS).flatMap((row) => Object.values(row)));
    expect([...reached].sort()).toEqual([...STATES].sort());
  });
});

describe('StateStore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function store(): StateStore {
    const dir = mkdtempSync(join(tmpdir(), 'agent-state-'));
    dirs.push(dir);
    return new StateStore(join(dir, 'state'));
  }

  it('starts idle and round-trips a record with its format version, mode 0600, no temp file left', () => {
    const s = store();
    expect(s.load()).toEqual(initialState());
    const record = {
      ...initialState(),
      state: 'pending-confirm' as const,
      apply: { update: 'u', version: '1.1.0', from: '1.0.0' },
    };
    s.save(record);
    expect(s.load()).toEqual(record);
    expect(JSON.parse(readFileSync(s.file, 'utf8')).format).toBe(STATE_FORMAT);
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    expect(statSync(s.dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(s.dir)).toEqual(['state.json']);
  });

  it.each([
    ['damaged JSON', '{"format":1,"sta'],
    ['another format', JSON.stringify({ ...initialState(), format: 2 })],
    ['unknown state', JSON.stringify({ ...initialState(), state: 'flashing' })],
    ['applying without its record', JSON.stringify({ ...initialState(), state: 'applying' })],
  ])('sets aside a record it cannot read (%s) and starts fresh', (_name, text) => {
    const s = store();
    writeFileSync(s.file, text);
    expect(s.load()).toEqual(initialState());
    expect(s.discarded).toMatch(/state\.json\.bad-\d+$/);
    expect(readFileSync(s.discarded!, 'utf8')).toBe(text);
    expect(existsSync(s.file)).toBe(false);
  });

  it('locks the directory against a live process and takes over the lock of a dead one', () => {
    const s = store();
    // The parent process is alive and is not this one (a bare PID, as older agents wrote it).
    writeFileSync(join(s.dir, 'agent.pid'), String(process.ppid));
    expect(() => s.lock()).toThrow(StateLockedError);
    const dead = spawnSync('true').pid!;
    writeFileSync(join(s.dir, 'agent.pid'), String(dead));
    const unlock = s.lock();
    expect(parseLock(readFileSync(join(s.dir, 'agent.pid'), 'utf8'))).toEqual(identify(process.pid));
    unlock();
    expect(existsSync(join(s.dir, 'agent.pid'))).toBe(false);
  });

  it('records the boot id and the start time with the PID', () => {
    const s = store();
    s.lock();
    const holder = JSON.parse(readFileSync(join(s.dir, 'agent.pid'), 'utf8'));
    expect(holder.pid).toBe(process.pid);
    expect(holder.boot).toBe(bootId());
    expect(holder.start).toBe(processStartTime(process.pid));
    expect(holder.start).toMatch(/^\d+$/);
  });

  // A PID written before a reboot may name an unrelated live process now: that must not block the agent.
  it.each([
    ['from another boot', { boot: '00000000-0000-4000-8000-000000000000' }],
    ['whose PID was reused (another start time)', { start: '1' }],
  ])('takes over a lock %s held by a live PID', (_name, differs) => {
    const s = store();
    const parent = identify(process.ppid);
    expect(parent.boot && parent.start, 'needs /proc').toBeTruthy();
    writeFileSync(join(s.dir, 'agent.pid'), JSON.stringify({ ...parent, ...differs }));
    s.lock();
    expect(parseLock(readFileSync(join(s.dir, 'agent.pid'), 'utf8'))?.pid).toBe(process.pid);
  });

  it('keeps a lock whose PID, boot and start time all match a live process', () => {
    const s = store();
    writeFileSync(join(s.dir, 'agent.pid'), JSON.stringify(identify(process.ppid)));
    expect(() => s.lock()).toThrow(`in use by agent process ${process.ppid}`);
  });

  it.each([
    ['a bare PID', '123\n', { pid: 123 }],
    ['JSON', '{"pid":7,"boot":"b","start":"99"}', { pid: 7, boot: 'b', start: '99' }],
    ['garbage', 'hello', undefined],
    ['a PID of 0', '0', undefined],
    ['JSON without a PID', '{"boot":"b"}', undefined],
  ])('parseLock reads %s', (_name, text, expected) => {
    expect(parseLock(text)).toEqual(expected);
  });

  it('turns a file in the way of the state directory into a one-line StateDirError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-state-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'file'), '');
    expect(() => new StateStore(join(dir, 'file'))).toThrow(StateDirError);
    expect(() => new StateStore(join(dir, 'file'))).toThrow(/: exists and is not a directory \(EEXIST\)$/);
    expect(() => new StateStore(join(dir, 'file', 'state'))).toThrow(
      /: a component of the path is not a directory \(ENOTDIR\)$/,
    );
  });
});

describe('StateStore.load: nested record shapes', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const apply = { update: 'u', version: '1.1.0', from: '1.0.0' };
  const download = { update: 'u', checksum: 'ab', size: 10, file: 'u.img', offset: 0 };
  const report = { update: 'u', success: false, status: 'failed', version: '1.0.0' };

  it.each([
    ['applying with "apply": null', { state: 'applying', apply: null }],
    ['idle with "apply": null', { apply: null }],
    [
      'an apply record without its version',
      { state: 'pending-confirm', apply: { update: 'u', from: '1.0.0' } },
    ],
    ['a script record without a PID', { state: 'applying', apply: { ...apply, script: { startedAt: 1 } } }],
    ['a download file name that leaves the downloads directory', { download: { ...download, file: '../x' } }],
    ['a download offset that is not a count', { download: { ...download, offset: -1 } }],
    ['a report with an unknown status', { state: 'reporting', report: { ...report, status: 'done' } }],
    ['a report whose success is a string', { state: 'reporting', report: { ...report, success: 'no' } }],
    ['a failure record that is a number', { failed: { u: 3 } }],
    ['an offer without a URL', { offer: { update: 'u', version: '1.1.0', checksum: 'ab', size: 1 } }],
    ['a lastCheckin that is a string', { lastCheckin: 'yesterday' }],
  ])('sets aside %s', (_name, fields) => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-state-'));
    dirs.push(dir);
    const s = new StateStore(dir);
    writeFileSync(s.file, JSON.stringify({ ...initialState(), ...fields }));
    expect(s.load()).toEqual(initialState());
    expect(s.discarded).toBeDefined();
  });

  it('reads every record of a full state back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-state-'));
    dirs.push(dir);
    const s = new StateStore(dir);
    const record = {
      ...initialState(),
      state: 'applying' as const,
      lastCheckin: 1,
      nextCheckin: 2,
      offer: { update: 'u', version: '1.1.0', url: 'http://x/', checksum: 'ab', size: 10 },
      download: { ...download, failures: 2 },
      apply: { ...apply, script: { pid: 42, boot: 'b', start: '7', startedAt: 3 } },
      failed: { old: { failures: 1, retryAt: 5 } },
    };
    s.save(record);
    expect(s.load()).toEqual(record);
    expect(s.discarded).toBeUndefined();
  });
});
