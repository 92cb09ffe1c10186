/**
 * Rollout control on an update's detail (DESIGN §12): the same operations as `updraft rollout`,
 * each button shown only when it applies. Advancing past a gate that does not hold asks first.
 */
import { useRef, useState } from 'preact/hooks';
import type { UpdateView } from '../../api-types.ts';
import {
  advanceRollout,
  pauseRollout,
  resumeRollout,
  retryFailed,
  type UpdateRef,
  viewOf,
} from '../api/updates.ts';
import type { Action } from '../hooks.ts';

interface Props {
  readonly updateRef: UpdateRef;
  readonly update: UpdateView;
  readonly action: Action;
  /** The update as the operation left it, shown at once. */
  readonly onChanged: (update: UpdateView) => void;
}

const hasNextPhase = (u: UpdateView) =>
  u.phaseStatus !== undefined &&
  u.phases !== undefined &&
  u.phaseStatus.index + 1 < u.phases.split(',').length;

export function RolloutControls({ updateRef, update, action, onChanged }: Props) {
  const [reason, setReason] = useState('');
  const [force, setForce] = useState(false);
  const confirm = useRef<HTMLDialogElement>(null);
  const run = (operation: () => ReturnType<typeof resumeRollout>) =>
    action.run(operation, (result) => onChanged(viewOf(result)));
  const advance = (forced: boolean) => {
    confirm.current?.close();
    run(() => advanceRollout(updateRef, forced));
  };

  return (
    <fieldset class="rollout">
      <legend>Rollout</legend>
      <div class="actions">
        {update.paused ? (
          <button type="button" disabled={action.busy} onClick={() => run(() => resumeRollout(updateRef))}>
            Resume
          </button>
        ) : (
          <>
            <label class="inline">
              Pause reason
              <input
                type="text"
                maxLength={200}
                value={reason}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
            </label>
            <button
              type="button"
              disabled={action.busy}
              onClick={() => run(() => pauseRollout(updateRef, reason.trim() || undefined))}
            >
              Pause
            </button>
          </>
        )}
        {hasNextPhase(update) && (
          <>
            <button
              type="button"
              disabled={action.busy}
              onClick={() => (force ? confirm.current?.showModal() : advance(false))}
            >
              Advance
            </button>
            <label class="inline">
              <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} />
              even if the gate does not hold
            </label>
          </>
        )}
        {update.counters.failure > 0 && (
          <button type="button" disabled={action.busy} onClick={() => run(() => retryFailed(updateRef))}>
            Retry failed
          </button>
        )}
      </div>
      <dialog ref={confirm} aria-labelledby="advance-title">
        <h3 id="advance-title">Advance {update.version} past its gate?</h3>
        <p>The next phase's devices get it now, whatever the reports so far say.</p>
        <div class="actions">
          <button type="button" class="danger" onClick={() => advance(true)}>
            Advance anyway
          </button>
          <button type="button" onClick={() => confirm.current?.close()}>
            Cancel
          </button>
        </div>
      </dialog>
    </fieldset>
  );
}
