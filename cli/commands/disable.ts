/** `updraft disable`: stop offering an update. */
import { updateCommand } from '../command.ts';

export const disable = updateCommand({
  summary: 'stop offering an update',
  usage: 'Usage: updraft disable --product P --version V\nDisable an update: checkins stop getting it.',
  operation: 'disableUpdate',
  done: (u) => `Disabled ${u.product} ${u.version} (update ${u.id}).`,
});
