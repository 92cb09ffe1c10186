/** The policy field's live check (publish and edit): compiled as it is typed, an error marks its column. */
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
] as const;

export type LimitName = (typeof LIMITS)[number]['name'];

export type PolicyState =
  | { kind: 'idle' }
  | { kind: 'ok'; result: PolicyCheckResult }
  | { kind: 'invalid'; message: string; column?: number | undefined };

/** Compiles the policy shortly after typing stops; the latest answer wins. */
export function usePolicyCheck(policy: string, version: string): PolicyState {
  const [state, setState] = useState<PolicyState>({ kind: 'idle' });
  useEffect(() => {
    let current = true;
    const timer = setTimeout(() => {
      checkPolicy(policy, /^\d+\.\d+\.\d+/.test(version) ? version : undefined).then(
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
  const column = state.column;
  return (
    <div id="policy-status" role="alert" class="error">
      <p>{state.message}</p>
      {column !== undefined && (
        <pre aria-hidden="true">
          {policy}
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
}: {
  policy: string;
  onInput: (policy: string) => void;
  /** The update's version, as `newVersion` in the policy, when it is one. */
  version: string;
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
          aria-describedby="policy-status"
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
