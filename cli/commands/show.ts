/** `updraft show`: one update in full, and its failures grouped by reason. */
import type { FailureReason } from '#admin/index.ts';
import { type Command, loadAdmin, SELECTOR_OPTIONS, updateSelector } from '../command.ts';
import { cut, describeUpdate, table } from '../format.ts';

function failuresText(reasons: readonly FailureReason[]): string {
  if (reasons.length === 0) return '\nFailure reasons: none';
  const rows = reasons.map((r) => [
    String(r.devices),
    r.lastAt,
    r.latest.map((d) => d.id).join(', ') || '-',
    r.error === '' ? '(no error given)' : cut(r.error, 80),
  ]);
  return `\nFailure reasons\n${table(['DEVICES', 'LAST', 'LATEST DEVICES', 'ERROR'], rows, '  ')}`;
}

export const show: Command = {
  summary: 'show one update in full',
  usage: `Usage: updraft show --product P --version V
Show an update: settings, image, signature, counters, pause reason, and its failures grouped by
reason (devices per error and the latest of them). --json adds "failures" and, for a phased
update, "phaseStatus" (where its phases stand now).`,
  options: SELECTOR_OPTIONS,
  async run(ctx) {
    const selector = updateSelector(ctx);
    const { updateFailures, phaseStatusOf } = await loadAdmin();
    const { update, reasons } = await updateFailures(await ctx.cloud(), selector);
    const phaseStatus = phaseStatusOf(update, Date.now());
    if (ctx.json) ctx.printJson({ ...update, ...(phaseStatus ? { phaseStatus } : {}), failures: reasons });
    else ctx.print(describeUpdate(update) + failuresText(reasons));
    return 0;
  },
};
