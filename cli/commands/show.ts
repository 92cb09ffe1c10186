/** `updraft show`: one update in full. */
import { updateCommand } from '../command.ts';
import { describeUpdate } from '../format.ts';

export const show = updateCommand({
  summary: 'show one update in full',
  usage: `Usage: updraft show --product P --version V
Show an update: settings, image, signature, counters and pause reason.`,
  operation: 'showUpdate',
  done: describeUpdate,
});
