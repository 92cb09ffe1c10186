/**
 * The devices of a product, a page at a time in id order ("Load more" follows the server's
 * cursor): search by id, filter by version and by a policy expression (checked as it is typed,
 * its error pointing at the column), each device opening its history. While only the first page
 * is shown it is reloaded every REFRESH_MS, so last seen and outcomes move as devices report.
 */
import type { Ref } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { DevicePage, DeviceSummary } from '../../api-types.ts';
import { type DeviceFilters, listDevices } from '../api/devices.ts';
import { ApiError } from '../api/http.ts';
import { ErrorLine, Time } from '../components.tsx';
import { PolicyStatus, usePolicyCheck } from '../policy-field.tsx';
import { REFRESH_MS } from '../refresh.ts';

const NO_FILTERS: DeviceFilters = { id: '', version: '', where: '' };

interface ListError {
  readonly message: string;
  readonly column?: number | undefined;
}

/** The pages loaded so far for the filters applied; a new filter or a refresh starts over. */
function useDevicePages(cloud: string, product: string, filters: DeviceFilters) {
  const [pages, setPages] = useState<readonly DevicePage[]>([]);
  const [error, setError] = useState<ListError | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  /** Bumped by every load; an answer to an older one is dropped (a refresh racing "Load more"). */
  const generation = useRef(0);
  const shown = useRef(pages);
  shown.current = pages;

  const load = (next?: string) => {
    const mine = ++generation.current;
    setLoading(true);
    listDevices(cloud, product, filters, next).then(
      (page) => {
        if (mine !== generation.current) return;
        setLoading(false);
        setError(undefined);
        setPages(next ? [...shown.current, page] : [page]);
      },
      (err: Error) => {
        if (mine !== generation.current) return;
        setLoading(false);
        setError({ message: err.message, column: err instanceof ApiError ? err.column : undefined });
      },
    );
  };

  useEffect(() => {
    setPages([]);
    load();
    const timer = setInterval(() => {
      if (shown.current.length <= 1) load();
    }, REFRESH_MS);
    return () => clearInterval(timer);
    // `load` reads these same values; each render's closure is equivalent.
  }, [cloud, product, filters]);

  return { pages, error, loading, loadMore: () => load(shown.current[shown.current.length - 1]?.next) };
}

function FilterForm({ onApply }: { onApply: (filters: DeviceFilters) => void }) {
  const [where, setWhere] = useState('');
  const check = usePolicyCheck(where.trim() === '' ? undefined : where, '');
  const apply = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    onApply({ id: text('id'), version: text('version'), where: text('where') });
  };
  return (
    <search aria-label="Device filters">
      <form class="filters" onSubmit={apply}>
        <label>
          Search device id (starts with)
          <input name="id" spellcheck={false} placeholder="gw-eu-" />
        </label>
        <label>
          Version
          <input name="version" spellcheck={false} placeholder="1.2.0" />
        </label>
        <label>
          Filter expression
          <input
            name="where"
            spellcheck={false}
            placeholder={'region == "eu" && semver(version, "<", "2.0.0")'}
            aria-describedby="policy-status"
            aria-invalid={check.kind === 'invalid'}
            value={where}
            onInput={(e) => setWhere(e.currentTarget.value)}
          />
        </label>
        {check.kind === 'invalid' ? <PolicyStatus state={check} policy={where} /> : <p id="policy-status" />}
        <div class="actions">
          <button type="submit">Apply filters</button>
          <button
            type="reset"
            onClick={() => {
              setWhere('');
              onApply(NO_FILTERS);
            }}
          >
            Clear
          </button>
        </div>
      </form>
    </search>
  );
}

function Outcome({ device }: { device: DeviceSummary }) {
  const last = device.lastUpdate;
  if (!last) return <>—</>;
  return (
    <span class={last.outcome === 'success' ? 'ok' : 'error'}>
      {last.outcome === 'success' ? 'Succeeded' : 'Failed'} <Time iso={last.at} />
    </span>
  );
}

/**
 * After "Load more", focus goes to the first device added: the button is disabled while it loads,
 * which would drop the keyboard's place to the top of the page.
 */
function useFocusAdded(devices: readonly DeviceSummary[]) {
  const table = useRef<HTMLTableElement>(null);
  const focusRow = useRef<number | undefined>(undefined);
  useEffect(() => {
    const row = focusRow.current;
    const link = row === undefined ? undefined : table.current?.querySelectorAll('tbody th a')[row];
    if (!(link instanceof HTMLElement)) return;
    focusRow.current = undefined;
    link.focus();
  });
  return { table, focusFrom: () => (focusRow.current = devices.length) };
}

function DeviceTable({
  devices,
  product,
  table,
}: {
  devices: readonly DeviceSummary[];
  product: string;
  table: Ref<HTMLTableElement>;
}) {
  return (
    <table ref={table} aria-label={`Devices of ${product}`}>
      <thead>
        <tr>
          <th scope="col">Device</th>
          <th scope="col">Version</th>
          <th scope="col">Last seen</th>
          <th scope="col">Last update</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        {devices.map((d) => (
          <tr key={d.id}>
            <th scope="row">
              <a href={`#/devices/${encodeURIComponent(d.id)}`}>{d.id}</a>
            </th>
            <td>{d.version}</td>
            <td>{d.lastSeen ? <Time iso={d.lastSeen} /> : '—'}</td>
            <td>
              {d.lastUpdate ? (
                <a href={`#/updates/${encodeURIComponent(d.lastUpdate.version)}`}>{d.lastUpdate.version}</a>
              ) : (
                '—'
              )}
            </td>
            <td>
              <Outcome device={d} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Devices({ cloud, product }: { cloud: string; product: string }) {
  const [filters, setFilters] = useState<DeviceFilters>(NO_FILTERS);
  const { pages, error, loading, loadMore } = useDevicePages(cloud, product, filters);
  const devices = pages.flatMap((p) => p.devices);
  const scanned = pages.reduce((sum, p) => sum + p.scanned, 0);
  const more = pages[pages.length - 1]?.next !== undefined;
  const { table, focusFrom } = useFocusAdded(devices);
  return (
    <section aria-labelledby="devices-title">
      <h2 id="devices-title">Devices of {product}</h2>
      <FilterForm onApply={setFilters} />
      {/* A broken expression's error, with its column, is the filter form's live check: shown once. */}
      {error && error.column === undefined && <ErrorLine message={error.message} />}
      {pages.length > 0 && (
        <p role="status" class="hint">
          {devices.length} {devices.length === 1 ? 'device' : 'devices'} listed of {scanned} read
          {more ? '; more remain' : ''}
        </p>
      )}
      {devices.length > 0 && <DeviceTable devices={devices} product={product} table={table} />}
      {more && (
        <button
          type="button"
          disabled={loading}
          onClick={() => {
            focusFrom();
            loadMore();
          }}
        >
          Load more
        </button>
      )}
    </section>
  );
}
