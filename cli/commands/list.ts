/** `updraft list`: a product's updates as a table, highest version first. */
import { answer, type Command, loadAdmin, required } from '../command.ts';
import { cut, limitsOf, phaseOf, statusOf, table } from '../format.ts';

export const list: Command = {
  summary: "list a product's updates",
  usage: `Usage: updraft list --product P
List the updates of a product, highest version first.`,
  options: { product: { type: 'string' } },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const { listUpdates, phaseStatusOf } = await loadAdmin();
    const updates = await listUpdates(await ctx.cloud(), product);
    if (ctx.json || updates.length === 0) {
      const now = Date.now();
      // Where a phased update's phases stand now, as the console's list answers it.
      const json = updates.map((u) => {
        const phaseStatus = phaseStatusOf(u, now);
        return phaseStatus ? { ...u, phaseStatus } : u;
      });
      return answer(ctx, json, `No updates of ${product}.`);
    }
    const rows = updates.map((u) => [
      u.version,
      u.id,
      statusOf(u),
      u.policy === '' ? '(default)' : cut(u.policy, 40),
      limitsOf(u),
      phaseOf(u),
      String(u.counters.started),
      String(u.counters.success),
      String(u.counters.failure),
    ]);
    ctx.print(
      table(['VERSION', 'ID', 'STATUS', 'POLICY', 'LIMITS', 'PHASE', 'STARTED', 'SUCCESS', 'FAILURE'], rows),
    );
    return 0;
  },
};
