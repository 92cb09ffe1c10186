import { describe, expect, it } from 'vitest';
import {
  evaluatePhase,
  formatGate,
  formatPhases,
  gateHolds,
  type PhaseInput,
  parseGate,
  parsePhases,
  parseStartAt,
} from '#core/phases.ts';

const HOUR = 3_600_000;

describe('parsePhases', () => {
  it('reads percentages and Ioto-style offsets, the first at the start', () => {
    expect(parsePhases('1%, 10%@24h,50%@48 hrs,100%@3d')).toEqual([
      { percentage: 1, afterSeconds: 0 },
      { percentage: 10, afterSeconds: 86_400 },
      { percentage: 50, afterSeconds: 172_800 },
      { percentage: 100, afterSeconds: 259_200 },
    ]);
    expect(parsePhases('0.01%,0.5%@30m')).toEqual([
      { percentage: 0.01, afterSeconds: 0 },
      { percentage: 0.5, afterSeconds: 1800 },
    ]);
  });

  it('keeps its canonical spelling', () => {
    const text = formatPhases(parsePhases('1%,10%@24 hrs,50%@90s,100%@1 week'.replace('50%@90s', '50%@2d')));
    expect(text).toBe('1%,10%@1d,50%@2d,100%@1w');
    expect(formatPhases(parsePhases(text))).toBe(text);
  });

  it.each([
    ['', /phase 1 "": write PCT%/],
    ['1', /phase 1 "1": write PCT%/],
    ['1%@1h,10%@2h', /first phase begins at the start/],
    ['1%,10%', /phase 2 "10%" needs @DURATION/],
    ['10%,5%@1h', /percentages must increase: phase 2 has 5% after 10%/],
    ['1%,10%@2h,20%@1h', /times must increase: phase 3/],
    ['1%,10%@2h,20%@2h', /times must increase/],
    ['0.001%', /Invalid --phases phase 1 0.001: use 0.01 to 100/],
    ['1%,101%@1h', /Invalid --phases phase 2 101/],
    ['1%,10%@soon', /Invalid duration for --phases phase 2: "soon"/],
    [Array.from({ length: 21 }, (_, i) => `${i + 1}%@${i}h`).join(','), /at most 20/],
  ])('refuses %j with one line saying what to fix', (text, message) => {
    expect(() => parsePhases(text)).toThrow(message);
    try {
      parsePhases(text);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

describe('parseGate', () => {
  it('reads success and min (min defaults to 1)', () => {
    expect(parseGate('success>=95%,min=20')).toEqual({ successPercent: 95, minReports: 20 });
    expect(parseGate(' success >= 99.5% ')).toEqual({ successPercent: 99.5, minReports: 1 });
    expect(formatGate(parseGate('min=5, success>=90%'))).toBe('success>=90%,min=5');
  });

  it.each([
    ['min=20', /needs success>=PCT%/],
    ['success>=0%', /greater than 0/],
    ['success>=101%', /at most 100/],
    ['success>95%', /Invalid --gate term "success>95%"/],
    ['success>=95%,min=0', /min=0: use a whole number/],
    ['success>=95%,max=3', /Invalid --gate term "max=3"/],
  ])('refuses %j', (text, message) => {
    expect(() => parseGate(text)).toThrow(message);
  });
});

describe('parseStartAt', () => {
  it('normalises to UTC ISO', () => {
    expect(parseStartAt('2026-12-01T03:00:00+01:00')).toBe('2026-12-01T02:00:00.000Z');
    expect(parseStartAt('2026-12-01')).toBe('2026-12-01T00:00:00.000Z');
  });
  it.each(['tomorrow', '2026-12-01T03:00', '2026-13-01T00:00:00Z', '1700000000'])('refuses %j', (text) => {
    expect(() => parseStartAt(text)).toThrow(/Invalid --start-at .*use an ISO time with a zone/);
  });
});

describe('gateHolds', () => {
  const gate = { successPercent: 95, minReports: 20 };
  it.each([
    [{ success: 19, failure: 0 }, false], // too few reports
    [{ success: 19, failure: 1 }, true], // exactly 95 %
    [{ success: 18, failure: 2 }, false],
    [{ success: 95, failure: 5 }, true],
  ])('%j → %s', (counters, holds) => {
    expect(gateHolds(gate, counters)).toBe(holds);
    expect(gateHolds(undefined, counters)).toBe(true);
  });
});

describe('evaluatePhase', () => {
  const start = Date.UTC(2026, 11, 1);
  const phases = parsePhases('1%,10%@24h,100%@48h');
  const gate = { successPercent: 95, minReports: 20 };
  const healthy = { success: 100, failure: 0 };
  const failing = { success: 50, failure: 50 };
  const base: PhaseInput = { now: start, start, phases, recorded: -1, counters: healthy, gate };

  it.each<[string, Partial<PhaseInput>, number, number, boolean]>([
    ['before the start nobody', { now: start - 1 }, -1, 0, false],
    ['at the start phase 0', {}, 0, 1, false],
    ['just before 24 h', { now: start + 24 * HOUR - 1 }, 0, 1, false],
    ['at 24 h with the gate holding', { now: start + 24 * HOUR }, 1, 10, false],
    ['at 48 h, both phases at once', { now: start + 48 * HOUR }, 2, 100, false],
    ['at 24 h, failures high: held', { now: start + 24 * HOUR, counters: failing }, 0, 1, true],
    ['too few reports: held', { now: start + 30 * HOUR, counters: { success: 5, failure: 0 } }, 0, 1, true],
    ['no gate: time alone', { now: start + 48 * HOUR, counters: failing, gate: undefined }, 2, 100, false],
    [
      'never below the recorded phase',
      { now: start + 50 * HOUR, counters: failing, recorded: 1 },
      1,
      10,
      true,
    ],
    ['recorded (advanced) before the start', { now: start - HOUR, recorded: 1 }, 1, 10, false],
    ['recorded past the end is clamped', { now: start, recorded: 7 }, 2, 100, false],
  ])('%s', (_name, change, index, percentage, waitingOnGate) => {
    const status = evaluatePhase({ ...base, ...change });
    expect(status).toMatchObject({ index, percentage, waitingOnGate });
  });

  it('says when the next phase is due, and nothing in the last', () => {
    expect(evaluatePhase(base).nextAt).toBe(start + 24 * HOUR);
    expect(evaluatePhase({ ...base, now: start + 48 * HOUR }).nextAt).toBeUndefined();
  });

  it('never goes back as a fake clock runs and counters swing, when the result is recorded', () => {
    let recorded = -1;
    const swings = [healthy, failing, { success: 0, failure: 0 }, healthy];
    for (let hour = -2; hour <= 60; hour++) {
      const counters = swings[(hour + 4) % swings.length]!;
      const status = evaluatePhase({ ...base, now: start + hour * HOUR, recorded, counters });
      expect(status.index).toBeGreaterThanOrEqual(recorded);
      recorded = status.index;
    }
    expect(recorded).toBe(2);
  });
});
