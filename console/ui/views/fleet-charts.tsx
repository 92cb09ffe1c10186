/**
 * The fleet charts: an hourly series (the product's or an update's), devices per version per day,
 * and checkins per day as a table (also what the versions chart shows, for screen readers).
 */
import { useMemo } from 'preact/hooks';
import type { ProductStats, SeriesPoint } from '../../api-types.ts';
import {
  DAY_SECONDS,
  daySeconds,
  HOUR_SECONDS,
  hourSeconds,
  TimeChart,
  type TimeSeries,
} from '../charts.tsx';

export type SeriesMetric = Exclude<keyof SeriesPoint, 'hour'>;

export interface MetricLine {
  readonly metric: SeriesMetric;
  readonly label: string;
  readonly color: string;
}

export const STARTED: MetricLine = { metric: 'UpdateStarted', label: 'Started', color: '--pending' };
export const SUCCEEDED: MetricLine = { metric: 'UpdateSuccess', label: 'Succeeded', color: '--success' };
export const FAILED: MetricLine = { metric: 'UpdateFailure', label: 'Failed', color: '--failure' };
export const ALL_METRICS: readonly MetricLine[] = [
  { metric: 'UpdateRequests', label: 'Update requests', color: '--accent' },
  { metric: 'UpdateDeferred', label: 'Deferred', color: '--warning' },
  STARTED,
  SUCCEEDED,
  FAILED,
];

/** One line per metric over the hours as stored (oldest first); the legend gives each total. */
export function HourlyChart({
  label,
  points,
  lines,
}: {
  label: string;
  points: readonly SeriesPoint[];
  lines: readonly MetricLine[];
}) {
  const { times, series } = useMemo(
    () => ({
      times: points.map((p) => hourSeconds(p.hour)),
      series: lines.map(({ metric, label: name, color }): TimeSeries => {
        const values = points.map((p) => p[metric]);
        const total = values.reduce((sum, n) => sum + n, 0);
        return { label: name, color, values, summary: `${total} in ${points.length} h` };
      }),
    }),
    [points, lines],
  );
  return <TimeChart label={label} times={times} step={HOUR_SECONDS} series={series} />;
}

const VERSION_COLORS = ['#3b82f6', '#16a34a', '#a855f7', '#ea580c', '#0891b2', '#db2777', '#ca8a04'];

const devicesText = (n: number) => (n === 1 ? '1 device' : `${n} devices`);

/**
 * Devices seen per day by the version each last had that day, a line per version (the current
 * ones first, highest first) and the day's total dashed; the legend gives the latest day's counts.
 */
export function VersionsChart({ stats }: { stats: ProductStats }) {
  const chart = useMemo(() => {
    const days = [...stats.seen].reverse();
    const latest = days.at(-1);
    const series = versionOrder(stats).map(
      (version, i): TimeSeries => ({
        label: version,
        color: VERSION_COLORS[i % VERSION_COLORS.length] ?? '#888',
        values: days.map((d) => d.versions[version] ?? 0),
        summary: devicesText(latest?.versions[version] ?? 0),
      }),
    );
    series.push({
      label: 'All devices seen',
      color: '--muted',
      values: days.map((d) => d.devices),
      summary: devicesText(latest?.devices ?? 0),
      dashed: true,
    });
    return { times: days.map((d) => daySeconds(d.day)), series, latest: latest?.day };
  }, [stats]);
  if (chart.times.length === 0) return <p>No devices seen yet.</p>;
  return (
    <>
      <p class="chart-note">Latest day {chart.latest}: devices seen that day, by the version they ran.</p>
      <TimeChart
        label="Devices per version per day"
        times={chart.times}
        step={DAY_SECONDS}
        series={chart.series}
      />
    </>
  );
}

/** Versions devices run now, highest first, then those only past days saw. */
function versionOrder(stats: ProductStats): string[] {
  const current = stats.versions.map((v) => v.version);
  const past = stats.seen.flatMap((d) => Object.keys(d.versions));
  return [...new Set([...current, ...past])];
}

/** Devices that checked in each day, latest first, and the versions they ran. */
export function CheckinsPerDay({ stats, days }: { stats: ProductStats; days: number }) {
  const order = versionOrder(stats);
  const byVersion = (versions: Readonly<Record<string, number>>) =>
    order.flatMap((version) => (versions[version] === undefined ? [] : [`${version}: ${versions[version]}`]));
  const shown = stats.seen.slice(0, days);
  if (shown.length === 0) return <p>No checkins recorded yet.</p>;
  return (
    <table aria-label="Checkins per day">
      <thead>
        <tr>
          <th scope="col">Day (UTC)</th>
          <th scope="col">Devices checked in</th>
          <th scope="col">By version</th>
        </tr>
      </thead>
      <tbody>
        {shown.map(({ day, devices, versions }) => (
          <tr key={day}>
            <th scope="row">{day}</th>
            <td>{devices}</td>
            <td>{byVersion(versions).join(', ') || '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
