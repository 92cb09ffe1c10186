/** `updraft delete`: remove an update record, then its image. */
import { updateCommand } from '../command.ts';

export const remove = updateCommand({
  summary: 'delete an update and its image',
  usage: `Usage: updraft delete --product P --version V
Delete an update record and its image.`,
  operation: 'deleteUpdate',
  json: (update) => ({ deleted: true, ...update }),
  done: (u) => `Deleted ${u.product} ${u.version} (update ${u.id}) and its image.`,
});
