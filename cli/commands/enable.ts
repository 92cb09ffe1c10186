/** `updraft enable`: make an update available again, or resume one that auto-abort paused. */
import { updateCommand } from '../command.ts';

export const enable = updateCommand({
  summary: 'make an update available (also resumes a paused one)',
  usage: 'Usage: updraft enable --product P --version V\nEnable an update; resumes one paused by auto-abort.',
  operation: 'enableUpdate',
  done: (u) => `Enabled ${u.product} ${u.version} (update ${u.id}).`,
});
