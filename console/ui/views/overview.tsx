/**
 * The fleet overview: devices per version, each update's progress and the product's daily metrics.
 * Placeholder for the fleet-data charts (devices per version over time, hourly series): today it
 * draws the daily metrics the cloud already stores.
 */
import { useMemo } from 'preact/hooks';
import type { ProductStats } from '../../api-types.ts';
import { productStats } from '../api/fleet.ts';
import { ErrorLine, RolloutProgress, TimeChart, type TimeSeries } from '../components.tsx';
import { useLoad } from '../hooks.ts';

const DAILY: readonly {
  name: 'UpdateRequests' | 'UpdateStarted' | 'UpdateSuccess' | 'UpdateFailure';
  color: string;
}[] = [
  { name: 'UpdateRequests', color: '#3b82f6' },
  { name: 'UpdateStarted', color: '#a855f7' },
  { name: 'UpdateSuccess', color: '#16a34a' },
  { name: 'UpdateFailure', color: '#dc2626' },
];

function DailyChart({ stats }: { stats: ProductStats }) {
  const { times, series } = useMemo(() => {
    const days = [...stats.metrics].reverse();
    return {
      times: days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000),
      series: DAILY.map(
        ({ name, color }): TimeSeries => ({
          label: name,
          color,
          values: days.map((d) => d[name]),
        }),
      ),
    };
  }, [stats]);
  if (times.length === 0) return <p>No checkins recorded yet.</p>;
  return (
    <TimeChart
      label="Update requests, starts, successes and failures per day"
      times={times}
      series={series}
    />
  );
}

export function Overview({ cloud, product }: { cloud: string; product: string }) {
  const { data: stats, error } = useLoad(() => productStats(cloud, product), `${cloud}/${product}`);
  return (
    <section aria-labelledby="overview-title">
      <h2 id="overview-title">Fleet overview</h2>
      <ErrorLine message={error} />
      {stats && (
        <>
          <p>
            {stats.devices === 1 ? '1 device' : `${stats.devices} devices`} of product {stats.product}
          </p>
          <h3>Devices per version</h3>
          <table>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Devices</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {stats.versions.map((v) => (
                <tr key={v.version}>
                  <td>{v.version}</td>
                  <td>{v.devices}</td>
                  <td>{v.lastSeen}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Updates in progress</h3>
          {stats.updates.length === 0 && <p>No updates published.</p>}
          {stats.updates.map((u) => (
            <RolloutProgress key={u.id} label={`Progress of ${u.version}`} counters={u} />
          ))}
          <h3>Checkins per day</h3>
          <DailyChart stats={stats} />
        </>
      )}
    </section>
  );
}
