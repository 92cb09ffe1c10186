import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateLockedError } from '#agent/errors.ts';
import {
  type AgentEvent,
  type AgentStateName,
  InvalidTransitionError,
  initialState,
  nextState,
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
    // The parent process is alive and is not this one.
    writeFileSync(join(s.dir, 'agent.pid'), String(process.ppid));
    expect(() => s.lock()).toThrow(StateLockedError);
    const dead = spawnSync('true').pid!;
    writeFileSync(join(s.dir, 'agent.pid'), String(dead));
    const unlock = s.lock();
    expect(readFileSync(join(s.dir, 'agent.pid'), 'utf8')).toBe(String(process.pid));
    unlock();
    expect(existsSync(join(s.dir, 'agent.pid'))).toBe(false);
  });
});
