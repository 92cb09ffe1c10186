/**
 * Rollout phases and their health gate (DESIGN §12), pure: parsing the builder's settings and
 * deciding which phase a checkin may be in. The phase recorded in the store only moves forward
 * (functions/phase-ledger.ts); here it is an input, so the answer never goes back below it.
 */
import { parseDuration } from './duration.ts';
import { ValidationError } from './errors.ts';
import { checkPercentage } from './rollout.ts';
import { quoteInput } from './version.ts';

/** One phase: a share of devices, and the earliest time after the start when it may begin. */
export interface RolloutPhase {
  /** 0.01–100, in the 0.01 % buckets of `percentage`. */
  readonly percentage: number;
  readonly afterSeconds: number;
}

/** A phase advances only when, among ≥ `minReports` reports, ≥ `successPercent` % succeeded. */
export interface PhaseGate {
  readonly successPercent: number;
  readonly minReports: number;
}

export const MAX_PHASES = 20;

const PHASE = /^(\d+(?:\.\d+)?)\s*%\s*(?:@\s*(.+))?$/;

/** `--phases "1%,10%@24h,50%@48h,100%@72h"` → phases; throws a one-line ValidationError naming the fix. */
export function parsePhases(text: string): RolloutPhase[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > MAX_PHASES)
    throw new ValidationError(`--phases has ${parts.length} phases: at most ${MAX_PHASES}`);
  const phases: RolloutPhase[] = [];
  for (const [i, part] of parts.entries()) {
    const m = PHASE.exec(part);
    if (!m) {
      throw new ValidationError(
        `Invalid --phases phase ${i + 1} ${quoteInput(part)}: write PCT% or PCT%@DURATION, e.g. "1%,10%@24h,100%@72h"`,
      );
    }
    const percentage = Number(m[1]);
    checkPercentage(percentage, `--phases phase ${i + 1}`);
    const afterSeconds = m[2] === undefined ? 0 : parseDuration(m[2], `--phases phase ${i + 1}`);
    const previous = phases.at(-1);
    if (i === 0 && afterSeconds !== 0) {
      throw new ValidationError(
        `--phases: the first phase begins at the start; drop its @${m[2]} (use --start-at)`,
      );
    }
    if (previous && m[2] === undefined) {
      throw new ValidationError(
        `--phases phase ${i + 1} ${quoteInput(part)} needs @DURATION after the start`,
      );
    }
    if (previous && percentage <= previous.percentage) {
      throw new ValidationError(
        `--phases percentages must increase: phase ${i + 1} has ${percentage}% after ${previous.percentage}%`,
      );
    }
    if (previous && afterSeconds <= previous.afterSeconds) {
      throw new ValidationError(
        `--phases times must increase: phase ${i + 1} begins at @${m[2]}, not after phase ${i}`,
      );
    }
    phases.push({ percentage, afterSeconds });
  }
  return phases;
}

const UNITS: readonly (readonly [string, number])[] = [
  ['w', 7 * 86_400],
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** Seconds in the largest unit that divides them: 86400 → "1d", 90 → "90s". */
function formatSeconds(seconds: number): string {
  for (const [unit, size] of UNITS) if (seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

/** Phases in the canonical spelling stored on the update (parsePhases reads it back unchanged). */
export function formatPhases(phases: readonly RolloutPhase[]): string {
  return phases
    .map((p, i) => (i === 0 ? `${p.percentage}%` : `${p.percentage}%@${formatSeconds(p.afterSeconds)}`))
    .join(',');
}

const GATE_SUCCESS = /^success\s*>=\s*(\d+(?:\.\d+)?)\s*%$/;
const GATE_MIN = /^min\s*=\s*(\d+)$/;

/** `--gate "success>=95%,min=20"` (min defaults to 1) → a gate. */
export function parseGate(text: string): PhaseGate {
  let successPercent: number | undefined;
  let minReports = 1;
  for (const part of text.split(',').map((p) => p.trim())) {
    const success = GATE_SUCCESS.exec(part);
    const min = GATE_MIN.exec(part);
    if (success) successPercent = Number(success[1]);
    else if (min) minReports = Number(min[1]);
    else {
      throw new ValidationError(
        `Invalid --gate term ${quoteInput(part)}: write success>=PCT% and optionally min=N, e.g. "success>=95%,min=20"`,
      );
    }
  }
  if (successPercent === undefined || !(successPercent > 0 && successPercent <= 100)) {
    throw new ValidationError(
      '--gate needs success>=PCT% with PCT greater than 0 and at most 100, e.g. "success>=95%"',
    );
  }
  if (!Number.isSafeInteger(minReports) || minReports < 1) {
    throw new ValidationError(`Invalid --gate min=${minReports}: use a whole number of reports, at least 1`);
  }
  return { successPercent, minReports };
}

export function formatGate(gate: PhaseGate): string {
  return `success>=${gate.successPercent}%,min=${gate.minReports}`;
}

/** `--start-at` → an ISO 8601 time (UTC); a date and time with a zone, or a date (midnight UTC). */
export function parseStartAt(text: string): string {
  const ms = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(text.trim())
    ? Date.parse(text.trim())
    : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new ValidationError(
      `Invalid --start-at ${quoteInput(text)}: use an ISO time with a zone, e.g. 2026-12-01T03:00:00Z`,
    );
  }
  return new Date(ms).toISOString();
}

/** Whether the reports so far satisfy the gate (no gate: always). */
export function gateHolds(
  gate: PhaseGate | undefined,
  counters: { success: number; failure: number },
): boolean {
  if (!gate) return true;
  const reports = counters.success + counters.failure;
  return reports >= gate.minReports && counters.success * 100 >= gate.successPercent * reports;
}

export interface PhaseInput {
  readonly now: number;
  /** Epoch ms when phase 0 begins. */
  readonly start: number;
  readonly phases: readonly RolloutPhase[];
  /** The phase recorded in the store, -1 when none: the answer is never below it. */
  readonly recorded: number;
  readonly counters: { readonly success: number; readonly failure: number };
  readonly gate?: PhaseGate;
}

export interface PhaseStatus {
  /** Index into the phases; -1 before the start (nobody). */
  readonly index: number;
  /** The share of devices admitted now (0 before the start). */
  readonly percentage: number;
  /** The next phase's time has come but its gate does not hold. */
  readonly waitingOnGate: boolean;
  /** When the next phase's time comes (epoch ms); undefined in the last phase. */
  readonly nextAt?: number;
}

/**
 * The phase a checkin at `now` may be in: the recorded one, advanced over every following phase
 * whose time has come, as long as the gate holds on the reports so far.
 */
export function evaluatePhase(input: PhaseInput): PhaseStatus {
  const { now, start, phases, counters, gate } = input;
  let index = Math.min(Math.max(input.recorded, now >= start ? 0 : -1), phases.length - 1);
  let waitingOnGate = false;
  while (index >= 0 && index + 1 < phases.length && now >= start + phases[index + 1]!.afterSeconds * 1000) {
    if (!gateHolds(gate, counters)) {
      waitingOnGate = true;
      break;
    }
    index++;
  }
  const next = phases[index + 1];
  return {
    index,
    percentage: index < 0 ? 0 : phases[index]!.percentage,
    waitingOnGate,
    ...(next ? { nextAt: start + next.afterSeconds * 1000 } : {}),
  };
}

const parsedPhases = new Map<string, RolloutPhase[]>();
const parsedGates = new Map<string, PhaseGate>();

/** What a stored update's phase settings mean, parsed once per spelling (checkins call this often). */
export function phasePlanOf(u: {
  readonly phases?: string;
  readonly gate?: string;
  readonly startAt?: string;
  readonly created: string;
}): { phases: RolloutPhase[]; gate: PhaseGate | undefined; start: number } | undefined {
  if (u.phases === undefined) return undefined;
  let phases = parsedPhases.get(u.phases);
  if (!phases) {
    phases = parsePhases(u.phases);
    if (parsedPhases.size > 1000) parsedPhases.clear();
    parsedPhases.set(u.phases, phases);
  }
  let gate = u.gate === undefined ? undefined : parsedGates.get(u.gate);
  if (u.gate !== undefined && !gate) {
    gate = parseGate(u.gate);
    if (parsedGates.size > 1000) parsedGates.clear();
    parsedGates.set(u.gate, gate);
  }
  return { phases, gate, start: Date.parse(u.startAt ?? u.created) };
}

/** Where a stored update stands at `now`; undefined for an update without phases. */
export function phaseStatusOf(
  u: {
    readonly phases?: string;
    readonly gate?: string;
    readonly startAt?: string;
    readonly created: string;
    readonly phase?: number;
    readonly counters: { readonly success: number; readonly failure: number };
  },
  now: number,
): PhaseStatus | undefined {
  const plan = phasePlanOf(u);
  if (!plan) return undefined;
  return evaluatePhase({ ...plan, now, recorded: u.phase ?? -1, counters: u.counters });
}
