/** One update: what it is, how far it got, and the actions (enable, disable, delete with confirmation). */
import { useRef, useState } from 'preact/hooks';
import type { UpdateRecord } from '../../api-types.ts';
import { deleteUpdate, disableUpdate, enableUpdate, showUpdate } from '../api/updates.ts';
import { ErrorLine, RolloutProgress } from '../components.tsx';
import { bytes, limits, policyText, status } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { EditUpdate } from './edit-update.tsx';

function Facts({ update }: { update: UpdateRecord }) {
  const rows: [string, string][] = [
    ['Status', status(update)],
    ['Policy', policyText(update)],
    ['Limits', limits(update)],
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

export function UpdateDetail({ product, version }: { product: string; version: string }) {
  const {
    data: update,
    error,
    reload,
    replace,
  } = useLoad(() => showUpdate(product, version), `${product}/${version}`);
  const [actionError, setActionError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(false);
  const confirm = useRef<HTMLDialogElement>(null);

  const act = (action: () => Promise<unknown>, after?: () => void) => {
    setBusy(true);
    setActionError(undefined);
    action().then(
      () => {
        setBusy(false);
        if (after) after();
        else reload();
      },
      (err: Error) => {
        setBusy(false);
        setActionError(err.message);
      },
    );
  };
  const remove = () => {
    confirm.current?.close();
    act(
      () => deleteUpdate(product, version),
      () => {
        location.hash = '#/updates';
      },
    );
  };

  return (
    <section aria-labelledby="detail-title">
      <h2 id="detail-title">
        Update {version} of {product}
      </h2>
      <p>
        <a href="#/updates">All updates</a>
      </p>
      <ErrorLine message={error ?? actionError} />
      {update && (
        <>
          <Facts update={update} />
          <RolloutProgress
            label={`Progress of ${update.version}`}
            counters={update.counters}
            limit={update.limit}
          />
          <div class="actions">
            {update.enabled && !update.paused ? (
              <button
                type="button"
                disabled={busy}
                onClick={() => act(() => disableUpdate(product, version))}
              >
                Disable
              </button>
            ) : (
              <button type="button" disabled={busy} onClick={() => act(() => enableUpdate(product, version))}>
                Enable
              </button>
            )}
            <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              Edit
            </button>
            <button type="button" class="danger" disabled={busy} onClick={() => confirm.current?.showModal()}>
              Delete
            </button>
          </div>
          {editing && (
            <EditUpdate
              update={update}
              onSaved={(saved) => {
                setEditing(false);
                replace(saved);
              }}
            />
          )}
          <dialog ref={confirm} aria-labelledby="confirm-title">
            <h3 id="confirm-title">Delete update {update.version}?</h3>
            <p>Devices stop getting it and its image is removed. This cannot be undone.</p>
            <div class="actions">
              <button type="button" class="danger" onClick={remove}>
                Delete {update.version}
              </button>
              <button type="button" onClick={() => confirm.current?.close()}>
                Cancel
              </button>
            </div>
          </dialog>
        </>
      )}
    </section>
  );
}
