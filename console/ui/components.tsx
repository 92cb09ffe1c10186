/** Small pieces the views share: the one-line error, a rollout's progress, a time chart. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { UpdateCounters } from '../api-types.ts';

/** An error as one line, announced to screen readers. */
export function ErrorLine({ message }: { message: string | undefined }) {
  if (!message) return null;
  return (
    <p role="alert" class="error">
      {message}
    </p>
  );
}

/**
 * Started, succeeded and failed against the goal (the update's device limit, or the devices that
 * started when it has none). Counters as the server keeps them: nothing is re-counted here.
 */
export function RolloutProgress({
  label,
  counters,
  limit,
}: {
  label: string;
  counters: UpdateCounters;
  limit?: number | undefined;
}) {
  const goal = Math.max(limit ?? counters.started, counters.started, 1);
  const pending = Math.max(counters.started - counters.success - counters.failure, 0);
  const width = (n: number) => `${(100 * n) / goal}%`;
  const text = `${counters.started} started, ${counters.success} succeeded, ${counters.failure} failed${
    limit !== undefined ? ` of at most ${limit}` : ''
  }`;
  return (
    <div class="progress">
      <div
        class="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={goal}
        aria-valuenow={counters.success + counters.failure}
        aria-valuetext={text}
      >
        <span class="success" style={{ width: width(counters.success) }} />
        <span class="failure" style={{ width: width(counters.failure) }} />
        <span class="pending" style={{ width: width(pending) }} />
      </div>
      <span class="progress-text">{text}</span>
    </div>
  );
}

const DAY_SECONDS = 86_400;

export interface TimeSeries {
  readonly label: string;
  readonly values: readonly number[];
  /** CSS color of the line. */
  readonly color: string;
}

/**
 * A line chart over time with uPlot: `times` in seconds since the epoch, one series per line,
 * drawn as the server stored them. `label` names the chart for screen readers; the data also
 * appear in a table next to it.
 */
export function TimeChart({
  label,
  times,
  series,
}: {
  label: string;
  times: readonly number[];
  series: readonly TimeSeries[];
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const first = times[0] ?? 0;
    const last = times[times.length - 1] ?? first;
    const style = getComputedStyle(el);
    const grid = { stroke: style.getPropertyValue('--line').trim() || '#888', width: 1 };
    const axis = { stroke: style.color, grid, ticks: grid };
    const chart = new uPlot(
      {
        width: Math.max(el.clientWidth, 300),
        height: 220,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2 }))],
        // A day either side; uPlot alone stretches a single point's time axis over years.
        scales: { x: { time: true, auto: false, range: [first - DAY_SECONDS, last + DAY_SECONDS] } },
        // Canvas text knows no CSS variables: take the page's colors as computed (light or dark).
        axes: [axis, axis],
      },
      [times as number[], ...series.map((s) => s.values as number[])],
      el,
    );
    el.dataset.drawn = 'true';
    return () => chart.destroy();
  }, [times, series]);
  return <div ref={box} class="chart" role="img" aria-label={label} />;
}
