/**
 * The fleet overview (DESIGN §11): devices per version now and per day, each update's progress,
 * the product's hourly series and checkins per day, all read from the product's statistics.
 */
import type { ProductStats } from '../../api-types.ts';
import { productStats } from '../api/fleet.ts';
import { ErrorLine, RolloutProgress, Time } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { ALL_METRICS, CheckinsPerDay, HourlyChart, VersionsChart } from './fleet-charts.tsx';

// Each day of devices seen is one query of its count items: two weeks keep the poll light.
const RANGE = { days: 14, hours: 48 };

function VersionsNow({ stats }: { stats: ProductStats }) {
  return (
    <table aria-label="Devices per version now">
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
            <td>{v.lastSeen ? <Time iso={v.lastSeen} /> : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Overview({ cloud, product }: { cloud: string; product: string }) {
  const { data: stats, error } = useLoad(() => productStats(cloud, product, RANGE), `${cloud}/${product}`);
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
          <VersionsChart stats={stats} />
          <VersionsNow stats={stats} />
          <h3>Updates in progress</h3>
          {stats.updates.length === 0 && <p>No updates published.</p>}
          {stats.updates.length > 0 && (
            // Each bar names its update: several bars alone do not say which rollout is which.
            <ul class="update-progress" aria-label="Progress per update">
              {stats.updates.map((u) => (
                <li key={u.id}>
                  <a href={`#/updates/${encodeURIComponent(u.version)}`}>{u.version}</a>
                  {u.paused ? ' (paused)' : u.enabled ? '' : ' (disabled)'}
                  <RolloutProgress
                    label={`Progress of ${u.version}`}
                    counters={u}
                    limit={u.limit}
                    eligible={u.eligible}
                  />
                </li>
              ))}
            </ul>
          )}
          <h3>Last {stats.hours} hours</h3>
          <HourlyChart
            label={`Update requests, deferrals, starts, successes and failures per hour of ${stats.product}`}
            points={stats.series.product}
            lines={ALL_METRICS}
          />
          <h3>Checkins per day</h3>
          <CheckinsPerDay stats={stats} days={7} />
        </>
      )}
    </section>
  );
}
