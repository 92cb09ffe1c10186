/**
 * Editing an update's policy, description, limits and phases (with gate and start time); only
 * what changed is sent, an emptied limit or phase setting is removed.
 */
import { useState } from 'preact/hooks';
import type { UpdateChanges, UpdateRecord } from '../../api-types.ts';
import { editUpdate } from '../api/updates.ts';
import { ErrorLine } from '../components.tsx';
import { LIMITS, LimitFields, PHASE_FIELDS, PhaseFields, PolicyField } from '../policy-field.tsx';

function changesFrom(form: HTMLFormElement, update: UpdateRecord): UpdateChanges {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? '').trim();
  const changes: Record<string, string | number | null> = {};
  if (text('policy') !== update.policy) changes.policy = text('policy');
  if (text('description') !== update.description) changes.description = text('description');
  for (const { name } of LIMITS) {
    const value = text(name) === '' ? null : Number(text(name));
    if (value !== (update[name] ?? null)) changes[name] = value;
  }
  for (const { name } of PHASE_FIELDS) {
    if (text(name) !== (update[name] ?? '')) changes[name] = text(name) === '' ? null : text(name);
  }
  return changes;
}

export function EditUpdate({
  cloud,
  update,
  onSaved,
}: {
  cloud: string;
  update: UpdateRecord;
  onSaved: (saved: UpdateRecord) => void;
}) {
  const [policy, setPolicy] = useState(update.policy);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const save = (event: Event) => {
    event.preventDefault();
    const changes = changesFrom(event.currentTarget as HTMLFormElement, update);
    if (Object.keys(changes).length === 0) return setError('Nothing changed: edit a field first');
    setBusy(true);
    setError(undefined);
    editUpdate({ cloud, product: update.product, version: update.version }, changes).then(
      (saved) => {
        setBusy(false);
        onSaved(saved);
      },
      (err: Error) => {
        setBusy(false);
        setError(err.message);
      },
    );
  };

  return (
    <form aria-labelledby="edit-title" onSubmit={save}>
      <h3 id="edit-title">Edit {update.version}</h3>
      <PolicyField policy={policy} onInput={setPolicy} version={update.version} />
      <label>
        Description
        <input name="description" defaultValue={update.description} />
      </label>
      <LimitFields legend="Limits (empty: none)" current={update} />
      <PhaseFields legend="Phases (empty: none)" current={update} />
      <button type="submit" disabled={busy}>
        Save changes
      </button>
      <ErrorLine message={error} />
    </form>
  );
}
