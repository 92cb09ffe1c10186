/** `updraft edit`: change an update's policy, description, limits or abort settings. */
import {
  answer,
  type Command,
  loadAdmin,
  SELECTOR_OPTIONS,
  updateSelector,
  warnAboutPolicy,
} from '../command.ts';
import { SETTINGS_HELP, SETTINGS_OPTIONS, settingChanges } from '../flags.ts';
import { describeUpdate } from '../format.ts';

export const edit: Command = {
  summary: "change an update's policy, description, limits or abort settings",
  usage: `Usage: updraft edit --product P --version V [options]
Change an update's settings; the result is validated as publish would. Pass none to remove a limit
(e.g. --limit none, --rate none --period none).
${SETTINGS_HELP}`,
  options: { ...SELECTOR_OPTIONS, ...SETTINGS_OPTIONS },
  async run(ctx) {
    const selector = updateSelector(ctx);
    const changes = settingChanges(ctx.values, true);
    const { editUpdate, policyWarnings } = await loadAdmin();
    const u = await editUpdate(await ctx.cloud(), selector, changes);
    warnAboutPolicy(policyWarnings(changes.policy));
    return answer(ctx, u, `Updated ${u.product} ${u.version} (update ${u.id}).\n${describeUpdate(u)}`);
  },
};
