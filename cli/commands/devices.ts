/** `updraft devices`: a product's devices a page at a time, filtered by version or policy. */
import type { DevicePage } from '#admin/index.ts';
import { type Command, type Context, loadAdmin, required, str } from '../command.ts';
import { UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';
import { shellQuote, table } from '../format.ts';

function pageText(page: DevicePage, ctx: Context): string[] {
  const rows = page.devices.map((d) => [
    d.id,
    d.version,
    d.lastSeen || '-',
    d.lastUpdate ? `${d.lastUpdate.version} (${d.lastUpdate.update})` : '-',
    d.lastUpdate ? `${d.lastUpdate.outcome} ${d.lastUpdate.at}` : '-',
  ]);
  const lines = [
    rows.length === 0
      ? `No devices${page.next ? ' on this page' : ''} (${page.scanned} read)`
      : table(['DEVICE', 'VERSION', 'LAST SEEN', 'LAST UPDATE', 'OUTCOME'], rows),
  ];
  if (page.next) {
    // The same filters again, with the cursor: copy-paste to continue.
    const again = ['product', 'id-prefix', 'version', 'where', 'limit']
      .map((name) => [name, str(ctx.values, name)] as const)
      .filter(([, v]) => v !== undefined)
      .map(([name, v]) => `--${name} ${shellQuote(v ?? '')}`);
    lines.push(`More: updraft devices ${again.join(' ')} --next ${page.next}`);
  }
  return lines;
}

export const devices: Command = {
  summary: 'list a product’s devices, a page at a time',
  usage: `Usage: updraft devices --product P [--id-prefix ID] [--version V] [--where EXPR] [--limit N] [--next CURSOR]
List the devices of a product in id order: version, last seen, last update and its outcome.
  --id-prefix ID         only devices whose id starts with ID (read from there in id order)
  --version V            only devices running version V
  --where EXPR           only devices a policy expression matches (newVersion is null), e.g. region == "eu"
  --limit N              devices per page, 1–1000 (default 50); a filtered page reads at most
                         5,000 devices and may list fewer, still ending with a cursor
  --next CURSOR          continue after the page that printed CURSOR (--json: "next")`,
  options: {
    product: { type: 'string' },
    'id-prefix': { type: 'string' },
    version: { type: 'string' },
    where: { type: 'string' },
    limit: { type: 'string' },
    next: { type: 'string' },
  },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const limit = numberFlag(ctx.values, 'limit');
    if (limit === null) throw new UsageError('Invalid --limit: use a whole number from 1 to 1000');
    const version = str(ctx.values, 'version');
    const idPrefix = str(ctx.values, 'id-prefix');
    const where = str(ctx.values, 'where');
    const next = str(ctx.values, 'next');
    const { listDevices } = await loadAdmin();
    const page = await listDevices(await ctx.cloud(), {
      product,
      ...(version !== undefined ? { version } : {}),
      ...(idPrefix !== undefined ? { idPrefix } : {}),
      ...(where !== undefined ? { where } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(next !== undefined ? { next } : {}),
    });
    if (ctx.json) ctx.printJson(page);
    else for (const line of pageText(page, ctx)) ctx.print(line);
    return 0;
  },
};
