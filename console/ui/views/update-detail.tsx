/**
 * One update: what it is, how far it got (progress, hourly chart, failures by reason, the devices
 * granted it with their outcomes), and the actions (enable, disable, delete with confirmation;
 * pause, resume, advance, retry failed for its rollout).
 */
import type { RefObject } from 'preact';
import { useRef, useState } from 'preact/hooks';
import type { UpdateRecord, UpdateView } from '../../api-types.ts';
import { deleteUpdate, disableUpdate, enableUpdate, showUpdate, type UpdateRef } from '../api/updates.ts';
import { ErrorLine, RolloutProgress } from '../components.tsx';
import { bytes, limits, phaseText, policyText, status } from '../format.ts';
import { useAction, useLoad } from '../hooks.ts';
import { EditUpdate } from './edit-update.tsx';
import { RolloutControls } from './rollout-controls.tsx';
import { FailureReasons, UPDATE_HOURS, UpdateHourly, useUpdateStats } from './update-activity.tsx';
import { UpdateDevices } from './update-devices.tsx';

/** A phased update's plan, gate and where it stands now; nothing without phases. */
function phaseRows(update: UpdateView): [string, string][] {
  const now = phaseText(update);
  if (update.phases === undefined || now === undefined) return [];
  return [
    ['Phases', `${update.phases} from ${update.startAt ?? update.created}`],
    ['Gate', update.gate ?? 'none'],
    ['Current phase', now],
  ];
}

function Facts({ update }: { update: UpdateView }) {
  const rows: [string, string][] = [
    ['Status', status(update)],
    ['Policy', policyText(update)],
    ['Limits', limits(update)],
    ...phaseRows(update),
    ['Description', update.description || '—'],
    ['Image', `${update.key} (${bytes(update.size)})`],
    ['SHA-256', update.checksum],
    ['Signed', update.signature ? 'yes' : 'no'],
    ['Published', update.created],
  ];
  return (
    <dl class="facts">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function DeleteConfirmation({
  update,
  dialog,
  onConfirm,
}: {
  update: UpdateRecord;
  dialog: RefObject<HTMLDialogElement>;
  onConfirm: () => void;
}) {
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title">
      <h3 id="confirm-title">Delete update {update.version}?</h3>
      <p>Devices stop getting it and its image is removed. This cannot be undone.</p>
      <div class="actions">
        <button type="button" class="danger" onClick={onConfirm}>
          Delete {update.version}
        </button>
        <button type="button" onClick={() => dialog.current?.close()}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}

export function UpdateDetail({ cloud, product, version }: UpdateRef) {
  const ref = { cloud, product, version };
  const { data: update, error, replace } = useLoad(() => showUpdate(ref), `${cloud}/${product}/${version}`);
  const { data: stats, error: statsError } = useUpdateStats(ref);
  const eligible = stats?.updates.find((u) => u.id === update?.id)?.eligible;
  const action = useAction();
  const [editing, setEditing] = useState(false);
  const confirm = useRef<HTMLDialogElement>(null);
  const remove = () => {
    confirm.current?.close();
    action.run(
      () => deleteUpdate(ref),
      () => {
        location.hash = '#/updates';
      },
    );
  };
  const running = update?.enabled === true && !update.paused;

  return (
    <section aria-labelledby="detail-title">
      <h2 id="detail-title">
        Update {version} of {product}
      </h2>
      <p>
        <a href="#/updates">All updates</a>
      </p>
      <ErrorLine message={error ?? action.error} />
      {update && (
        <>
          <Facts update={update} />
          <RolloutProgress
            label={`Progress of ${update.version}`}
            counters={update.counters}
            limit={update.limit}
            eligible={eligible}
          />
          <div class="actions">
            <button
              type="button"
              disabled={action.busy}
              onClick={() => action.run(() => (running ? disableUpdate : enableUpdate)(ref), replace)}
            >
              {running ? 'Disable' : 'Enable'}
            </button>
            <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              Edit
            </button>
            <button
              type="button"
              class="danger"
              disabled={action.busy}
              onClick={() => confirm.current?.showModal()}
            >
              Delete
            </button>
          </div>
          <RolloutControls updateRef={ref} update={update} action={action} onChanged={replace} />
          {editing && (
            <EditUpdate
              cloud={cloud}
              update={update}
              onSaved={(saved) => {
                setEditing(false);
                replace(saved);
              }}
            />
          )}
          <h3>Last {UPDATE_HOURS} hours</h3>
          <UpdateHourly stats={stats} error={statsError} update={update} />
          <h3>Failures by reason</h3>
          <FailureReasons updateRef={ref} />
          <h3>Devices</h3>
          <UpdateDevices updateRef={ref} />
          <DeleteConfirmation update={update} dialog={confirm} onConfirm={remove} />
        </>
      )}
    </section>
  );
}
