/**
 * What a builder sets on an update besides its image, and the rules publish and edit both check.
 * Rules throw core's ValidationError or PolicyError; the operations turn them into AdminErrors.
 */
import { isValidProduct } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import { formatGate, formatPhases, parseGate, parsePhases, parseStartAt } from '#core/phases.ts';
import { compilePolicy } from '#core/policy.ts';
import { checkPercentage } from '#core/rollout.ts';
import type { AbortSettings, PhaseSettings, RolloutLimits } from '#core/types.ts';
import { parseVersion, quoteInput } from '#core/version.ts';

export interface UpdateSettings extends RolloutLimits, AbortSettings, PhaseSettings {
  /** Distribution policy; '' means `semver(version, "<", newVersion)`. */
  readonly policy: string;
  readonly description: string;
}

/** Changes of an edit; null removes a limit or an abort setting. */
export interface UpdateChanges {
  readonly policy?: string;
  readonly description?: string;
  readonly percentage?: number | null;
  readonly limit?: number | null;
  readonly rate?: number | null;
  readonly period?: number | null;
  readonly abortThreshold?: number | null;
  readonly abortMin?: number | null;
  /** `--phases "1%,10%@24h,100%@72h"` (DESIGN §12). */
  readonly phases?: string | null;
  /** `--gate "success>=95%,min=20"`. */
  readonly gate?: string | null;
  /** `--start-at` ISO time. */
  readonly startAt?: string | null;
}

export const MAX_DESCRIPTION_LENGTH = 1024;

const NUMERIC_SETTINGS = ['percentage', 'limit', 'rate', 'period', 'abortThreshold', 'abortMin'] as const;
const PHASE_SETTINGS = ['phases', 'gate', 'startAt'] as const;

/** A phase setting in its canonical spelling (throws ValidationError naming the flag). */
const canonical: Record<(typeof PHASE_SETTINGS)[number], (text: string) => string> = {
  phases: (text) => formatPhases(parsePhases(text)),
  gate: (text) => formatGate(parseGate(text)),
  startAt: parseStartAt,
};

export function checkProduct(product: string): void {
  if (!isValidProduct(product)) {
    throw new ValidationError(
      `Invalid product ${quoteInput(product)}: use 1–64 characters of A-Z a-z 0-9 . _ : -`,
    );
  }
}

function isWhole(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1;
}

function isPercentage(n: number): boolean {
  return Number.isFinite(n) && n > 0 && n <= 100;
}

function checkLimits({ percentage, limit, rate, period }: RolloutLimits): void {
  if (percentage !== undefined) checkPercentage(percentage);
  if (limit !== undefined && !isWhole(limit)) {
    throw new ValidationError(`Invalid --limit ${limit}: use a whole number of devices, at least 1`);
  }
  if ((rate === undefined) !== (period === undefined)) {
    throw new ValidationError('--rate and --period go together: --rate N grants per --period S seconds');
  }
  if (rate !== undefined && !isWhole(rate)) {
    throw new ValidationError(`Invalid --rate ${rate}: use a whole number of grants, at least 1`);
  }
  if (period !== undefined && !isWhole(period)) {
    throw new ValidationError(`Invalid --period ${period}: use a whole number of seconds, at least 1`);
  }
}

function checkAbort({ abortThreshold, abortMin }: AbortSettings): void {
  if ((abortThreshold === undefined) !== (abortMin === undefined)) {
    throw new ValidationError(
      '--abort-threshold and --abort-min go together: pause after N reports when PCT% of them failed',
    );
  }
  if (abortThreshold !== undefined && !isPercentage(abortThreshold)) {
    throw new ValidationError(
      `Invalid --abort-threshold ${abortThreshold}: use a failure percentage greater than 0 and at most 100`,
    );
  }
  if (abortMin !== undefined && !isWhole(abortMin)) {
    throw new ValidationError(`Invalid --abort-min ${abortMin}: use a whole number of reports, at least 1`);
  }
}

/**
 * Checks the settings of an update of `version` (publish and edit alike). Throws ValidationError
 * naming the flag to fix, or the PolicyError of a policy that does not compile.
 */
function checkPhaseSettings(s: UpdateSettings): void {
  for (const name of PHASE_SETTINGS) {
    const text = s[name];
    if (text !== undefined) canonical[name](text);
  }
  if (s.phases !== undefined && s.percentage !== undefined) {
    throw new ValidationError('--phases and --percentage exclude each other: the phases set the percentage');
  }
  if (s.phases === undefined && (s.gate !== undefined || s.startAt !== undefined)) {
    const flag = s.gate !== undefined ? 'gate' : 'start-at';
    throw new ValidationError(`--${flag} needs --phases (on edit, remove it with --${flag} none)`);
  }
}

export function checkSettings(version: string, allowDowngrade: boolean, s: UpdateSettings): void {
  checkPhaseSettings(s);
  checkLimits(s);
  checkAbort(s);
  if (s.description.length > MAX_DESCRIPTION_LENGTH) {
    throw new ValidationError(`--description is too long: at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  compilePolicy(s.policy);
  const empty = s.policy.trim() === '';
  if (empty && parseVersion(version).prerelease !== '') {
    throw new ValidationError(
      `Prerelease ${version} needs a --policy: with an empty one it would reach every device (e.g. --policy 'test == true')`,
    );
  }
  if (empty && allowDowngrade) {
    throw new ValidationError('--allow-downgrade needs a non-empty --policy naming the devices to downgrade');
  }
}

/** The settings among `input`'s fields, with the defaults of the ones left out. */
export function settingsOf(input: Partial<UpdateSettings>): UpdateSettings {
  const s: { -readonly [K in keyof UpdateSettings]: UpdateSettings[K] } = {
    policy: input.policy ?? '',
    description: input.description ?? '',
  };
  for (const name of NUMERIC_SETTINGS) {
    if (input[name] !== undefined) s[name] = input[name];
  }
  for (const name of PHASE_SETTINGS) {
    const text = input[name];
    if (text !== undefined) s[name] = canonical[name](text);
  }
  return s;
}

export type ChangeEntry = readonly [name: keyof UpdateChanges, value: string | number | null];

/** The changes actually given; throws when there are none. */
export function changeEntries(changes: UpdateChanges): ChangeEntry[] {
  const entries = (
    Object.entries(changes) as [keyof UpdateChanges, string | number | null | undefined][]
  ).filter((entry): entry is [keyof UpdateChanges, string | number | null] => entry[1] !== undefined);
  if (entries.length === 0) {
    throw new ValidationError(
      'Nothing to edit: pass --policy, --description, --percentage, --limit, --rate/--period, --abort-threshold/--abort-min, --phases, --gate or --start-at',
    );
  }
  return entries;
}

/** The settings after the changes (null removes a setting). */
export function applyChanges(current: UpdateSettings, entries: readonly ChangeEntry[]): UpdateSettings {
  const merged: Record<string, unknown> = { ...current };
  for (const [name, value] of entries) merged[name] = value === null ? undefined : value;
  return settingsOf(merged as Partial<UpdateSettings>);
}
