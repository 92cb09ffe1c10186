/** `updraft policy check`: parse and explain a policy, try it on a device, dry-run it on a fleet. */
import type { PolicyCheckResult } from '#admin/index.ts';
import { type Command, type Context, loadAdmin, str } from '../command.ts';
import { UsageError } from '../errors.ts';
import { table } from '../format.ts';

function jsonAnswer(result: PolicyCheckResult): string {
  const outcome = result.device?.outcome;
  return JSON.stringify({
    ok: true,
    terms: result.terms,
    ...(outcome !== undefined ? { match: outcome === true } : {}),
    ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    ...(outcome === null ? { evaluationError: true } : {}),
    ...(result.fleet ?? {}),
  });
}

function textAnswer(result: PolicyCheckResult): string[] {
  const { device, fleet } = result;
  const lines = [
    `Policy: ${result.source}${result.isDefault ? '  (the default)' : ''}`,
    `Terms:  ${result.terms}`,
    result.explanation,
    ...result.warnings.map((w) => `Warning (column ${w.column}): ${w.reason}`),
  ];
  if (device) {
    const { outcome } = device;
    const said =
      outcome === null ? 'error (evaluation failed: counts as no match)' : outcome ? 'match' : 'no match';
    lines.push(`\nDevice ${device.id} (version ${device.version}): ${said}`);
  }
  if (fleet) {
    const errors = fleet.errors ? ` (${fleet.errors} evaluation errors)` : '';
    lines.push(`\nWould match ${fleet.matched} of ${fleet.devices} devices of ${fleet.product}${errors}`);
    if (fleet.sample.length) {
      const rows = fleet.sample.map((d) => [d.id, d.version]);
      lines.push(table(['DEVICE', 'VERSION'], rows, '  '));
      const more = fleet.matched - fleet.sample.length;
      if (more > 0) lines.push(`  … and ${more} more`);
    }
  }
  if ((device || fleet) && result.newVersion === undefined)
    lines.push('(newVersion is null: pass --new-version V)');
  return lines;
}

async function run(ctx: Context): Promise<number> {
  const source = ctx.positionals[0];
  if (source === undefined) throw new UsageError('Missing EXPR: updraft policy check EXPR (quote it)');
  const product = str(ctx.values, 'product');
  const deviceFile = str(ctx.values, 'device');
  const newVersion = str(ctx.values, 'new-version');
  const { checkPolicy, InvalidPolicyError } = await loadAdmin();
  let result: PolicyCheckResult;
  try {
    result = await checkPolicy(
      {
        policy: source,
        ...(newVersion !== undefined ? { newVersion } : {}),
        ...(product !== undefined ? { product } : {}),
        ...(deviceFile !== undefined ? { device: { file: deviceFile } } : {}),
      },
      () => ctx.cloud(),
    );
  } catch (err) {
    if (ctx.json && err instanceof InvalidPolicyError) {
      ctx.print(JSON.stringify({ ok: false, error: err.reason, column: err.column }));
    }
    throw err;
  }
  if (ctx.json) ctx.print(jsonAnswer(result));
  else for (const line of textAnswer(result)) ctx.print(line);
  return 0;
}

export const policyCheck: Command = {
  summary: 'parse, explain and try a distribution policy',
  usage: `Usage: updraft policy check EXPR [--device FILE.json] [--new-version V] [--product P]
Parse a policy and explain it; with --device evaluate it for one device (a checkin body in JSON
or JSON5); with --product dry-run it against the devices in that product's registry.
  --device FILE          device properties, including "version"
  --new-version V        the update's version (newVersion in the policy)
  --product P            evaluate against the registry of product P (needs a cloud)`,
  options: { device: { type: 'string' }, 'new-version': { type: 'string' }, product: { type: 'string' } },
  positionals: ['EXPR'],
  run,
};
