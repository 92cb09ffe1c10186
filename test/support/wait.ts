/** Waiting in tests: for a condition, never for a guessed time. */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` every 20 ms until it returns true; past `timeoutMs` it throws
 * `Timed out after N ms waiting for <what>`. A check may throw to end the wait early (a process
 * that exited, say) with its own message.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
