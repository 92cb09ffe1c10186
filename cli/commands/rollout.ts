/** `updraft rollout pause|resume|advance|retry-failed`: control a rollout (DESIGN §12). */
import type { RolloutResult } from '#admin/index.ts';
import {
  answer,
  type Command,
  type Context,
  loadAdmin,
  SELECTOR_OPTIONS,
  str,
  updateSelector,
} from '../command.ts';
import { phaseOf, statusOf } from '../format.ts';

function said(ctx: Context, what: string, r: RolloutResult, extra = ''): number {
  const u = r.update;
  const status = u.paused ? `paused (${u.pauseReason ?? 'no reason given'})` : statusOf(u);
  const text = `${what} ${u.product} ${u.version} (update ${u.id}): ${status}; phase: ${phaseOf(u)}${extra}`;
  return answer(ctx, r, text);
}

export const rolloutPause: Command = {
  summary: 'pause a rollout: checkins stop getting the update',
  usage: `Usage: updraft rollout pause --product P --version V [--reason TEXT]
Pause the update (shown with the reason, as auto-abort's are); updraft rollout resume undoes it.`,
  options: { ...SELECTOR_OPTIONS, reason: { type: 'string' } },
  async run(ctx) {
    const selector = updateSelector(ctx);
    const { pauseRollout } = await loadAdmin();
    return said(ctx, 'Paused', await pauseRollout(await ctx.cloud(), selector, str(ctx.values, 'reason')));
  },
};

export const rolloutResume: Command = {
  summary: 'resume a paused rollout (paused by hand or by auto-abort)',
  usage: `Usage: updraft rollout resume --product P --version V
Resume a paused update; a disabled one stays disabled (updraft enable).`,
  options: SELECTOR_OPTIONS,
  async run(ctx) {
    const selector = updateSelector(ctx);
    const { resumeRollout } = await loadAdmin();
    return said(ctx, 'Resumed', await resumeRollout(await ctx.cloud(), selector));
  },
};

export const rolloutAdvance: Command = {
  summary: 'begin the next phase now (the gate still applies unless --force)',
  usage: `Usage: updraft rollout advance --product P --version V [--force]
Skip the wait for the next phase of a phased update. The gate must hold unless --force.`,
  options: { ...SELECTOR_OPTIONS, force: { type: 'boolean' } },
  async run(ctx) {
    const selector = updateSelector(ctx);
    const { advanceRollout } = await loadAdmin();
    const force = ctx.values.force === true;
    return said(ctx, 'Advanced', await advanceRollout(await ctx.cloud(), selector, { force }));
  },
};

export const rolloutRetryFailed: Command = {
  summary: 'offer the update again to devices whose last report failed',
  usage: `Usage: updraft rollout retry-failed --product P --version V
Offer the update again to the devices whose last report failed (their agents' backoff is cleared).`,
  options: SELECTOR_OPTIONS,
  async run(ctx) {
    const selector = updateSelector(ctx);
    const { retryFailed } = await loadAdmin();
    const r = await retryFailed(await ctx.cloud(), selector);
    const paused = r.update.paused ? ' (paused: resume it to reach them)' : '';
    return said(ctx, 'Retrying', r, `; ${r.failedDevices} failed device(s) offered it again${paused}`);
  },
};
