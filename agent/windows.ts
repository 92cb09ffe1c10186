/**
 * Ioto's `update.schedule` and `update.apply`: cron patterns (minute hour day month weekday, local
 * time) naming the minutes in which a checkin, or the apply of a verified image, may run. Parsed by
 * croner; the agent only asks whether a minute is in the window and when the window next opens.
 */
import { Cron } from 'croner';

export class CronWindow {
  private readonly cron: Cron;

  /** Throws croner's error for a pattern that is not five cron fields. */
  constructor(readonly pattern: string) {
    this.cron = new Cron(pattern, { paused: true, mode: '5-part' });
  }

  /** Whether the minute holding `at` (epoch ms) is in the window. */
  allows(at: number): boolean {
    return this.cron.match(new Date(at - (at % 60_000)));
  }

  /** The first instant at or after `at` inside the window; undefined when it never opens again. */
  nextOpen(at: number): number | undefined {
    if (this.allows(at)) return at;
    return this.cron.nextRun(new Date(at))?.getTime();
  }
}
