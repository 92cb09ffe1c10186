/**
 * How an update's rollout goes: its hourly series of started, succeeded and failed (the update's
 * own, from the product's statistics) and its failures grouped by reason with the latest devices.
 * Both reload while the detail is open, so a rollout can be watched.
 */
import type { ProductStats, SeriesPoint, UpdateRecord } from '../../api-types.ts';
import { productStats, updateFailures } from '../api/fleet.ts';
import type { UpdateRef } from '../api/updates.ts';
import { ErrorLine, Time } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { FAILED, HourlyChart, STARTED, SUCCEEDED } from './fleet-charts.tsx';

/** Hours of the update's chart. */
export const UPDATE_HOURS = 48;
const RANGE = { days: 1, hours: UPDATE_HOURS };
const LINES = [STARTED, SUCCEEDED, FAILED];

/** The hours of the product's series with zeros: an update without counts in them has no series. */
const zeros = (hours: readonly SeriesPoint[]): SeriesPoint[] =>
  hours.map((p) => ({
    hour: p.hour,
    UpdateRequests: 0,
    UpdateDeferred: 0,
    UpdateStarted: 0,
    UpdateSuccess: 0,
    UpdateFailure: 0,
  }));

/** The product's statistics over the update chart's hours, reloaded while the detail is open. */
export function useUpdateStats({ cloud, product }: UpdateRef) {
  return useLoad(() => productStats(cloud, product, RANGE), `${cloud}/${product}`);
}

export function UpdateHourly({
  stats,
  error,
  update,
}: {
  stats: ProductStats | undefined;
  error: string | undefined;
  update: UpdateRecord;
}) {
  if (error) return <ErrorLine message={error} />;
  if (!stats) return null;
  const points = stats.series.updates[update.id] ?? zeros(stats.series.product);
  return (
    <HourlyChart
      label={`Started, succeeded and failed per hour of ${update.version}`}
      points={points}
      lines={LINES}
    />
  );
}

export function FailureReasons({ updateRef }: { updateRef: UpdateRef }) {
  const { cloud, product, version } = updateRef;
  const { data, error } = useLoad(() => updateFailures(updateRef), `${cloud}/${product}/${version}`);
  if (error) return <ErrorLine message={error} />;
  if (!data) return null;
  if (data.reasons.length === 0) return <p>No failures reported.</p>;
  return (
    <table aria-label={`Failures of ${version} by reason`}>
      <thead>
        <tr>
          <th scope="col">Reason</th>
          <th scope="col">Devices</th>
          <th scope="col">Latest failure</th>
          <th scope="col">Latest devices</th>
        </tr>
      </thead>
      <tbody>
        {data.reasons.map((reason) => (
          <tr key={reason.error}>
            <th scope="row">
              <code>{reason.error || '(no error text sent)'}</code>
            </th>
            <td>{reason.devices}</td>
            <td>{reason.lastAt ? <Time iso={reason.lastAt} /> : '—'}</td>
            <td>{reason.latest.map((d) => d.id).join(', ') || '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
