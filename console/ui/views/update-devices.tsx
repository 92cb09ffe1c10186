/**
 * The devices granted an update with their outcomes, a page at a time: "Load more" adds the next
 * page. While open, the pages shown are read again (from the first, each with the cursor the one
 * before ended with), so outcomes change in place as devices report.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { UpdateDevicePage } from '../../api-types.ts';
import { updateDevices } from '../api/fleet.ts';
import type { UpdateRef } from '../api/updates.ts';
import { ErrorLine, Time } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { UPDATE_DEVICES_PAGE } from '../pages.ts';

/**
 * Reads the first `count()` pages, stopping at the last. A read that "Load more" overtook (asking
 * for more pages while it ran) reads on, so it never answers fewer pages than are shown.
 */
async function firstPages(ref: UpdateRef, count: () => number): Promise<UpdateDevicePage[]> {
  const pages: UpdateDevicePage[] = [];
  let next: string | undefined;
  do {
    const page = await updateDevices(ref, UPDATE_DEVICES_PAGE, next);
    pages.push(page);
    next = page.next;
  } while (next && pages.length < count());
  return pages;
}

const OUTCOME_TEXT = { success: 'succeeded', failure: 'failed' } as const;

export function UpdateDevices({ updateRef }: { updateRef: UpdateRef }) {
  const { cloud, product, version } = updateRef;
  const key = `${cloud}/${product}/${version}`;
  // Pages shown, per update: another update starts again at one.
  const shown = useRef({ key, count: 1 });
  if (shown.current.key !== key) shown.current = { key, count: 1 };
  const { data: pages, error, reload } = useLoad(() => firstPages(updateRef, () => shown.current.count), key);
  const devices = pages?.flatMap((p) => p.devices) ?? [];
  const more = pages?.at(-1)?.next !== undefined;
  // After "Load more", focus goes to the first device added (the button may be gone).
  const table = useRef<HTMLTableElement>(null);
  const focusRow = useRef<number | undefined>(undefined);
  useEffect(() => {
    const row = focusRow.current;
    const header = row === undefined ? undefined : table.current?.querySelectorAll('tbody th')[row];
    if (!(header instanceof HTMLElement)) return;
    focusRow.current = undefined;
    header.tabIndex = -1;
    header.focus();
  });
  const loadMore = () => {
    shown.current.count = (pages?.length ?? 0) + 1;
    focusRow.current = devices.length;
    reload();
  };
  return (
    <>
      <ErrorLine message={error} />
      {pages && devices.length === 0 && <p>No device was granted {version} yet.</p>}
      {devices.length > 0 && (
        <table ref={table} class="outcomes" aria-label={`Devices granted ${version}`}>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Granted</th>
              <th scope="col">Outcome</th>
              <th scope="col">Reported</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr key={d.id}>
                <th scope="row">
                  <a href={`#/devices/${encodeURIComponent(d.id)}`}>{d.id}</a>
                </th>
                <td>{d.granted ? <Time iso={d.granted} /> : '—'}</td>
                <td class={d.outcome === 'failure' ? 'error' : d.outcome === 'success' ? 'ok' : undefined}>
                  {d.outcome ? OUTCOME_TEXT[d.outcome] : 'pending'}
                </td>
                <td>{d.outcomeAt ? <Time iso={d.outcomeAt} /> : '—'}</td>
                <td>{d.error ? <code>{d.error}</code> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {more && (
        <button type="button" onClick={loadMore}>
          Load more
        </button>
      )}
    </>
  );
}
