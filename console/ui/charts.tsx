/**
 * Time charts with uPlot, drawn from the series as the server stored them (STYLE habit 15): the
 * product's and an update's hourly series, and devices per version per day. Each chart has a name
 * for screen readers and a legend in the page (not in the canvas) with each line's summary.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';

export const HOUR_SECONDS = 3600;
export const DAY_SECONDS = 86_400;

export interface TimeSeries {
  readonly label: string;
  readonly values: readonly number[];
  /** A CSS color, or a custom property of the page (`--success`) so light and dark both read. */
  readonly color: string;
  /** What the legend says of the line: its latest value, or its total. */
  readonly summary: string;
  readonly dashed?: boolean;
}

/** A color as canvas can draw it: custom properties resolved against the chart's element. */
function resolveColor(color: string, el: HTMLElement): string {
  return color.startsWith('--') ? getComputedStyle(el).getPropertyValue(color).trim() || '#888' : color;
}

const cssColor = (color: string) => (color.startsWith('--') ? `var(${color})` : color);

/** Whether the page is dark now: canvas colors are taken when drawn, so a switch redraws. */
function useDarkScheme(): boolean {
  const [dark, setDark] = useState(() => matchMedia('(prefers-color-scheme: dark)').matches);
  useEffect(() => {
    const query = matchMedia('(prefers-color-scheme: dark)');
    const onChange = (event: MediaQueryListEvent) => setDark(event.matches);
    query.addEventListener('change', onChange);
    return () => query.removeEventListener('change', onChange);
  }, []);
  return dark;
}

/**
 * A line chart over time: `times` in seconds since the epoch, `step` the seconds between points
 * (the axis is padded by one step either side: uPlot alone stretches a single point over years).
 */
export function TimeChart({
  label,
  times,
  step,
  series,
}: {
  label: string;
  times: readonly number[];
  step: number;
  series: readonly TimeSeries[];
}) {
  const box = useRef<HTMLDivElement>(null);
  const dark = useDarkScheme();
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
        legend: { show: false },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: resolveColor(s.color, el),
            width: 2,
            ...(s.dashed ? { dash: [6, 4] } : {}),
          })),
        ],
        scales: { x: { time: true, auto: false, range: [first - step, last + step] } },
        // Canvas text knows no CSS variables: take the page's colors as computed (light or dark).
        axes: [axis, axis],
      },
      [times as number[], ...series.map((s) => s.values as number[])],
      el,
    );
    // Which scheme's colors it was drawn with (tests and the bench wait on it).
    el.dataset.drawn = dark ? 'dark' : 'light';
    return () => chart.destroy();
  }, [times, step, series, dark]);
  return (
    <figure class="chart-figure">
      <div ref={box} class="chart" role="img" aria-label={label} />
      <ul class="legend" aria-label={`Legend of ${label}`}>
        {series.map((s) => (
          <li key={s.label}>
            <span class={s.dashed ? 'swatch dashed' : 'swatch'} style={{ borderColor: cssColor(s.color) }} />
            {s.label}: {s.summary}
          </li>
        ))}
      </ul>
    </figure>
  );
}

/** Seconds since the epoch of an hour as the series name it (yyyy-mm-ddThh, UTC). */
export const hourSeconds = (hour: string) => Date.parse(`${hour}:00:00Z`) / 1000;

/** Seconds since the epoch of a day (yyyy-mm-dd, UTC). */
export const daySeconds = (day: string) => Date.parse(`${day}T00:00:00Z`) / 1000;
