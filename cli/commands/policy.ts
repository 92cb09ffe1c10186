/** `updraft policy check`: parse and explain a policy, try it on a device, dry-run it on a fleet. */
import type { PolicyCheckResult } from '#admin/index.ts';
import { type Command, type Context, loadAdmin, str } from '../command.ts';
import { UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';
import { shellQuote, table } from '../format.ts';

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

/** The command that resumes a cut dry run: the same arguments, with the cursor. */
function resumeCommand(ctx: Context, next: string): string {
  const flags = ['product', 'new-version', 'device', 'scan-limit']
    .map((name) => [name, str(ctx.values, name)] as const)
    .filter(([, v]) => v !== undefined)
    .map(([name, v]) => `--${name} ${shellQuote(v ?? '')}`);
  return `updraft policy check ${shellQuote(ctx.positionals[0] ?? '')} ${flags.join(' ')} --next ${next}`;
}

function fleetText(fleet: NonNullable<PolicyCheckResult['fleet']>, ctx: Context): string[] {
  const errors = fleet.errors ? ` (${fleet.errors} evaluation errors)` : '';
  if (fleet.complete && ctx.values.next === undefined) {
    return [`\nWould match ${fleet.matched} of ${fleet.devices} devices of ${fleet.product}${errors}`];
  }
  const part = ctx.values.next === undefined ? 'the first' : 'the next';
  const lines = [
    `\nWould match ${fleet.matched} of ${part} ${fleet.scanned} devices of ${fleet.product}${errors}`,
  ];
  if (fleet.next) {
    const bound =
      fleet.cutBy === 'time'
        ? 'its time bound'
        : `its bound of ${str(ctx.values, 'scan-limit') ?? '10000'} devices`;
    lines.push(
      `Partial: the scan stopped at ${bound}; continue with:`,
      `  ${resumeCommand(ctx, fleet.next)}`,
    );
  } else lines.push('The scan reached the end of the registry.');
  return lines;
}

function textAnswer(result: PolicyCheckResult, ctx: Context): string[] {
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
    lines.push(...fleetText(fleet, ctx));
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

/** `Scanned N devices…` on stderr while a dry run reads the registry, on a terminal only. */
function scanProgress(): { update: (scanned: number) => void; done: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let shown = false;
  return {
    update(scanned) {
      shown = true;
      process.stderr.write(`\rScanned ${scanned} devices…`);
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[2K');
    },
  };
}

async function run(ctx: Context): Promise<number> {
  const source = ctx.positionals[0];
  if (source === undefined) throw new UsageError('Missing EXPR: updraft policy check EXPR (quote it)');
  const product = str(ctx.values, 'product');
  const deviceFile = str(ctx.values, 'device');
  const newVersion = str(ctx.values, 'new-version');
  const next = str(ctx.values, 'next');
  const scanLimit = numberFlag(ctx.values, 'scan-limit') ?? undefined;
  if ((next !== undefined || scanLimit !== undefined) && product === undefined)
    throw new UsageError('--next and --scan-limit belong to a dry run: add --product P');
  const progress = scanProgress();
  const { checkPolicy, InvalidPolicyError } = await loadAdmin();
  let result: PolicyCheckResult;
  try {
    result = await checkPolicy(
      {
        policy: source,
        ...(newVersion !== undefined ? { newVersion } : {}),
        ...(product !== undefined ? { product } : {}),
        ...(deviceFile !== undefined ? { device: { file: deviceFile } } : {}),
        scan: {
          ...(next !== undefined ? { next } : {}),
          ...(scanLimit !== undefined ? { maxDevices: scanLimit } : {}),
          onProgress: progress.update,
        },
      },
      () => ctx.cloud(),
    );
  } catch (err) {
    if (ctx.json && err instanceof InvalidPolicyError) {
      ctx.print(JSON.stringify({ ok: false, error: err.reason, column: err.column }));
    }
    throw err;
  } finally {
    progress.done();
  }
  if (ctx.json) ctx.print(jsonAnswer(result));
  else for (const line of textAnswer(result, ctx)) ctx.print(line);
  return 0;
}

export const policyCheck: Command = {
  summary: 'parse, explain and try a distribution policy',
  usage: `Usage: updraft policy check EXPR [--device FILE.json] [--new-version V] [--product P [--next CURSOR]]
Parse a policy and explain it; with --device evaluate it for one device (a checkin body in JSON
or JSON5); with --product dry-run it against the devices in that product's registry.
A dry run reads at most 10,000 devices or 5 s per call (progress on a terminal); a cut scan says
so and prints the command that continues it (--json: "complete": false and "next").
  --device FILE          device properties, including "version"
  --new-version V        the update's version (newVersion in the policy)
  --product P            evaluate against the registry of product P (needs a cloud)
  --next CURSOR          continue a cut dry run after the devices it scanned
  --scan-limit N         read at most N devices in this call (1–10000, default 10000)`,
  options: {
    device: { type: 'string' },
    'new-version': { type: 'string' },
    product: { type: 'string' },
    next: { type: 'string' },
    'scan-limit': { type: 'string' },
  },
  positionals: ['EXPR'],
  run,
};
