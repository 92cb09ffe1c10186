/** Flags of update settings, shared by publish and edit: parsed into what admin's operations take. */
import type { UpdateChanges } from '#admin/index.ts';
import { parseDuration } from '#core/duration.ts';
import { type Options, str, type Values } from './command.ts';
import { UsageError } from './errors.ts';

export const SETTINGS_OPTIONS: Options = {
  policy: { type: 'string' },
  description: { type: 'string' },
  percentage: { type: 'string' },
  limit: { type: 'string' },
  rate: { type: 'string' },
  period: { type: 'string' },
  'abort-threshold': { type: 'string' },
  'abort-min': { type: 'string' },
  phases: { type: 'string' },
  gate: { type: 'string' },
  'start-at': { type: 'string' },
};

export const SETTINGS_HELP = `  --policy EXPR          distribution policy (default: semver(version, "<", newVersion))
  --description TEXT     what the update brings
  --percentage P         offer to P% of devices (0 < P <= 100), the same devices every time
  --limit N              at most N devices
  --rate N --period S    at most N grants per S seconds (S may be a duration: "1 hr")
  --abort-threshold PCT --abort-min N
                         pause the update once N reports arrived and PCT% of them failed
  --phases "1%,10%@24h,100%@72h"
                         staged rollout: PCT% of devices, from DURATION after the start (not with
                         --percentage); updraft rollout advance|pause|resume controls it
  --gate "success>=95%,min=20"
                         a phase advances only when PCT% of at least N reports succeeded
  --start-at TIME        ISO time the first phase begins (default: now)`;

/** A numeric flag: undefined when absent; with `clearable`, `none` gives null (remove the setting). */
export function numberFlag(values: Values, name: string, clearable = false): number | null | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (clearable && raw === 'none') return null;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) {
    throw new UsageError(
      `Invalid --${name} "${raw}": use a number${clearable ? ', or none to remove it' : ''}`,
    );
  }
  return n;
}

function periodFlag(values: Values, clearable = false): number | null | undefined {
  const raw = str(values, 'period');
  if (raw === undefined) return undefined;
  if (clearable && raw === 'none') return null;
  try {
    return parseDuration(/^\d+$/.test(raw) ? Number(raw) : raw, '--period');
  } catch {
    throw new UsageError(`Invalid --period "${raw}": use a number of seconds or a duration such as "1 hr"`);
  }
}

/** The settings the flags set; with `clearable` (edit), `none` removes a limit. */
export function settingChanges(values: Values, clearable: boolean): UpdateChanges {
  const changes: Record<string, string | number | null> = {};
  const set = (name: string, value: string | number | null | undefined) => {
    if (value !== undefined) changes[name] = value;
  };
  set('policy', str(values, 'policy'));
  set('description', str(values, 'description'));
  set('percentage', numberFlag(values, 'percentage', clearable));
  set('limit', numberFlag(values, 'limit', clearable));
  set('rate', numberFlag(values, 'rate', clearable));
  set('period', periodFlag(values, clearable));
  set('abortThreshold', numberFlag(values, 'abort-threshold', clearable));
  set('abortMin', numberFlag(values, 'abort-min', clearable));
  for (const [flag, name] of [
    ['phases', 'phases'],
    ['gate', 'gate'],
    ['start-at', 'startAt'],
  ] as const) {
    const raw = str(values, flag);
    set(name, clearable && raw === 'none' ? null : raw);
  }
  return changes as UpdateChanges;
}
