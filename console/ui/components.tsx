/** Small pieces the views share: the one-line error, a time, a rollout's progress (charts: charts.tsx). */
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

/** A time as the reader's locale shows it; the exact ISO time in the markup and on hover. */
export function Time({ iso }: { iso: string }) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return <>{iso}</>;
  return (
    <time dateTime={iso} title={iso}>
      {date.toLocaleString()}
    </time>
  );
}

/**
 * Started, succeeded and failed against the goal: the update's device limit, else the devices it
 * can reach (`eligible`, estimated by the server), else the devices that started. Counters as the
 * server keeps them: nothing is re-counted here.
 */
export function RolloutProgress({
  label,
  counters,
  limit,
  eligible,
}: {
  label: string;
  counters: UpdateCounters;
  limit?: number | undefined;
  eligible?: number | undefined;
}) {
  const goal = Math.max(limit ?? eligible ?? counters.started, counters.started, 1);
  const pending = Math.max(counters.started - counters.success - counters.failure, 0);
  const width = (n: number) => `${(100 * n) / goal}%`;
  const of =
    limit !== undefined
      ? ` of at most ${limit}`
      : eligible !== undefined
        ? ` of about ${eligible} eligible`
        : '';
  const text = `${counters.started} started, ${counters.success} succeeded, ${counters.failure} failed${of}`;
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
