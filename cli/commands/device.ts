/** `updraft device show`: one device's properties and update history. */
import type { DeviceDetail } from '#admin/index.ts';
import { type Command, loadAdmin, required } from '../command.ts';
import { table } from '../format.ts';

function detailText(d: DeviceDetail): string[] {
  const lines = [
    `Device:     ${d.id}`,
    `Product:    ${d.product}`,
    `Version:    ${d.version}`,
    `Last seen:  ${d.lastSeen || '-'}`,
    `Properties: ${JSON.stringify(d.properties)}`,
    '\nUpdate history',
  ];
  if (d.history.length === 0) return [...lines, '  none offered'];
  const rows = d.history.flatMap((h) => [
    [h.version, h.update, 'offered', h.offered, ''],
    ...h.reports.map((r) => ['', '', r.status, r.at, r.error ?? '']),
  ]);
  lines.push(table(['VERSION', 'UPDATE', 'EVENT', 'AT', 'ERROR'], rows, '  '));
  return lines;
}

export const deviceShow: Command = {
  summary: 'one device: properties and update history',
  usage: `Usage: updraft device show --product P --id ID
Show a device of the registry: its version, last checkin and properties, and each update offered
to it with its reports (downloaded, verified, applied / failed with the error sent) and their times.`,
  options: { product: { type: 'string' }, id: { type: 'string' } },
  async run(ctx) {
    const product = required(ctx, 'product', 'P');
    const id = required(ctx, 'id', 'ID');
    const { showDevice } = await loadAdmin();
    const detail = await showDevice(await ctx.cloud(), { product, id });
    if (ctx.json) ctx.printJson(detail);
    else for (const line of detailText(detail)) ctx.print(line);
    return 0;
  },
};
