/**
 * The policy field's live check (publish and edit): compiled as it is typed, an error marks its
 * column. Also the phase fields both forms share.
 */
import { useEffect, useState } from 'preact/hooks';
import type { PolicyCheckResult } from '../api-types.ts';
import { ApiError } from './api/http.ts';
import { checkPolicy } from './api/policy.ts';

const POLICY_CHECK_DELAY_MS = 250;

/** The rollout limits a form offers, by their field names in the API. */
export const LIMITS = [
  { name: 'percentage', label: 'Percentage of devices' },
  { name: 'limit', label: 'Device limit' },
  { name: 'rate', label: 'Rate (grants per period)' },
  { name: 'period', label: 'Period (seconds)' },
  { name: 'abortThreshold', label: 'Pause when failures exceed (% of reports)' },
  { name: 'abortMin', label: 'Only after this many reports' },
] as const;

export type LimitName = (typeof LIMITS)[number]['name'];

/** The version as `newVersion` for a policy, once it looks like one. */
export const newVersionOf = (version: string) => (/^\d+\.\d+\.\d+/.test(version) ? version : undefined);

export type PolicyState =
  | { kind: 'idle' }
  | { kind: 'ok'; result: PolicyCheckResult }
  | { kind: 'invalid'; message: string; column?: number | undefined };

/** Compiles the policy shortly after typing stops; the latest answer wins. Undefined: nothing to check. */
export function usePolicyCheck(policy: string | undefined, version: string): PolicyState {
  const [state, setState] = useState<PolicyState>({ kind: 'idle' });
  useEffect(() => {
    if (policy === undefined) {
      setState({ kind: 'idle' });
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      checkPolicy(policy, newVersionOf(version)).then(
        (result) => current && setState({ kind: 'ok', result }),
        (err: Error) =>
          current &&
          setState({
            kind: 'invalid',
            message: err.message,
            column: err instanceof ApiError ? err.column : undefined,
          }),
      );
    }, POLICY_CHECK_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [policy, version]);
  return state;
}

export function PolicyStatus({ state, policy }: { state: PolicyState; policy: string }) {
  if (state.kind === 'idle') return <p id="policy-status" />;
  if (state.kind === 'ok') {
    const { result } = state;
    return (
      <div id="policy-status" role="status">
        <p class="ok">
          {result.isDefault
            ? 'Default policy: devices older than this version'
            : `Policy OK: ${result.terms} terms`}
        </p>
        {result.warnings.map((w) => (
          <p key={`${w.column}:${w.reason}`} class="warning">
            Warning (column {w.column}): {w.reason}
          </p>
        ))}
      </div>
    );
  }
  return <ColumnError id="policy-status" message={state.message} column={state.column} source={policy} />;
}

/** An error as one line; a policy's error also points at its column under the expression. */
export function ColumnError({
  id,
  message,
  column,
  source,
}: {
  id?: string;
  message: string;
  column?: number | undefined;
  source: string;
}) {
  return (
    <div id={id} role="alert" class="error">
      <p>{message}</p>
      {column !== undefined && (
        <pre aria-hidden="true">
          {source}
          {'\n'}
          {`${' '.repeat(Math.max(column - 1, 0))}^ column ${column}`}
        </pre>
      )}
    </div>
  );
}

/** The labelled policy textarea with its live check under it. */
export function PolicyField({
  policy,
  onInput,
  version,
  describedBy,
}: {
  policy: string;
  onInput: (policy: string) => void;
  /** The update's version, as `newVersion` in the policy, when it is one. */
  version: string;
  /** What else describes the field (the publish form's "would match" line). */
  describedBy?: string;
}) {
  const state = usePolicyCheck(policy, version);
  return (
    <>
      <label>
        Policy
        <textarea
          name="policy"
          rows={3}
          spellcheck={false}
          aria-describedby={describedBy ? `policy-status ${describedBy}` : 'policy-status'}
          aria-invalid={state.kind === 'invalid'}
          placeholder={'semver(version, "<", newVersion) && region == "eu"'}
          value={policy}
          onInput={(e) => onInput(e.currentTarget.value)}
        />
      </label>
      <PolicyStatus state={state} policy={policy} />
    </>
  );
}

/** The limit inputs, empty or with the update's current values. */
export function LimitFields({
  legend,
  current,
}: {
  legend: string;
  current?: Partial<Record<LimitName, number>>;
}) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      {LIMITS.map(({ name, label }) => (
        <label key={name}>
          {label}
          <input
            name={name}
            type="number"
            min="0"
            step="any"
            defaultValue={current?.[name]?.toString() ?? ''}
          />
        </label>
      ))}
    </fieldset>
  );
}

/** The phase settings (DESIGN §12) by their field names in the API, as text. */
export const PHASE_FIELDS = [
  { name: 'phases', label: 'Phases', placeholder: '1%,10%@24h,50%@48h,100%@72h' },
  { name: 'gate', label: 'Gate', placeholder: 'success>=95%,min=20' },
  { name: 'startAt', label: 'Start time (ISO 8601)', placeholder: '2026-12-01T09:00:00Z' },
] as const;

export type PhaseName = (typeof PHASE_FIELDS)[number]['name'];

/** Phases, health gate and start time, empty or with the update's current values. */
export function PhaseFields({
  legend,
  current,
}: {
  legend: string;
  current?: Partial<Record<PhaseName, string>>;
}) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      <p class="hint" id="phases-hint">
        Each phase is a percentage of devices and how long after the start it may begin (10%@24h); a phase
        advances only while the gate holds on the reports so far.
      </p>
      {PHASE_FIELDS.map(({ name, label, placeholder }) => (
        <label key={name}>
          {label}
          <input
            name={name}
            placeholder={placeholder}
            spellcheck={false}
            aria-describedby="phases-hint"
            defaultValue={current?.[name] ?? ''}
          />
        </label>
      ))}
    </fieldset>
  );
}
