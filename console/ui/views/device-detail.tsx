/**
 * One device: its version, when it was last seen, the properties it last sent, and every update
 * offered to it with its reports (downloaded, applied or failed with the error it sent, and when).
 * Reloaded every REFRESH_MS like the other views, so a device's update can be watched.
 */
import type { DeviceDetail as Device, DeviceReportEntry, DeviceUpdateHistory } from '../../api-types.ts';
import { showDevice } from '../api/devices.ts';
import { ErrorLine, Time } from '../components.tsx';
import { useLoad } from '../hooks.ts';

const TERMINAL: ReadonlySet<DeviceReportEntry['status']> = new Set(['applied', 'failed', 'rejected']);

function Report({ report }: { report: DeviceReportEntry | undefined }) {
  if (!report) return <>—</>;
  return (
    <span class={report.success ? 'ok' : 'error'}>
      {report.status} <Time iso={report.at} />
    </span>
  );
}

function HistoryRow({ entry }: { entry: DeviceUpdateHistory }) {
  const downloaded = entry.reports.find((r) => r.status === 'downloaded');
  const result = entry.reports.findLast((r) => TERMINAL.has(r.status));
  const errors = entry.reports.flatMap((r) => (r.error ? [r.error] : []));
  return (
    <tr>
      <th scope="row">
        <a href={`#/updates/${encodeURIComponent(entry.version)}`}>{entry.version}</a>
      </th>
      <td>
        <Time iso={entry.offered} />
      </td>
      <td>
        <Report report={downloaded} />
      </td>
      <td>{result ? <Report report={result} /> : entry.outcome === null ? 'in progress' : entry.outcome}</td>
      <td>{errors.length > 0 ? <code>{errors.join('; ')}</code> : '—'}</td>
    </tr>
  );
}

function Properties({ properties }: { properties: Device['properties'] }) {
  // The version it sent is shown above from the registry, which a success report has moved on since
  // the checkin: as sent it would contradict that (Version 1.2.0 beside version 1.0.0).
  const entries = Object.entries(properties).filter(([name]) => name !== 'version');
  if (entries.length === 0) return <p>None sent.</p>;
  return (
    <table aria-labelledby="properties-title">
      <tbody>
        {entries.map(([name, value]) => (
          <tr key={name}>
            <th scope="row">{name}</th>
            <td>
              <code>{typeof value === 'string' ? value : JSON.stringify(value)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DeviceDetail({ cloud, product, id }: { cloud: string; product: string; id: string }) {
  const { data: device, error } = useLoad(() => showDevice(cloud, product, id), `${cloud}/${product}/${id}`);
  return (
    <section aria-labelledby="device-title">
      <h2 id="device-title">
        Device {id} of {product}
      </h2>
      <p>
        <a href="#/devices">All devices</a>
      </p>
      <ErrorLine message={error} />
      {device && (
        <>
          <dl class="facts">
            <div>
              <dt>Version</dt>
              <dd>{device.version}</dd>
            </div>
            <div>
              <dt>Last seen</dt>
              <dd>{device.lastSeen ? <Time iso={device.lastSeen} /> : '—'}</dd>
            </div>
          </dl>
          <h3 id="properties-title">Properties</h3>
          <Properties properties={device.properties} />
          <h3 id="history-title">Update history</h3>
          {device.history.length === 0 ? (
            <p>No update offered yet.</p>
          ) : (
            <table aria-labelledby="history-title">
              <thead>
                <tr>
                  <th scope="col">Update</th>
                  <th scope="col">Offered</th>
                  <th scope="col">Downloaded</th>
                  <th scope="col">Result</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {device.history.map((entry) => (
                  <HistoryRow key={entry.update} entry={entry} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
