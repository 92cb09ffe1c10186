/** `updraft publish`: upload an image and publish it as an update, to one cloud or to all. */
import { basename } from 'node:path';
import type { ImageFile, PublishOptions } from '#admin/index.ts';
import type { CloudTarget } from '../cloud.ts';
import {
  type Command,
  type Context,
  loadAdmin,
  required,
  SELECTOR_OPTIONS,
  str,
  updateSelector,
  warnAboutPolicy,
} from '../command.ts';
import { SETTINGS_HELP, SETTINGS_OPTIONS, settingChanges } from '../flags.ts';
import { progressMeter } from '../format.ts';

async function publishInput(ctx: Context): Promise<PublishOptions & ImageFile> {
  const selector = updateSelector(ctx);
  const file = required(ctx, 'file', 'F');
  const signKey = str(ctx.values, 'sign-key');
  const { readSigningKey } = await loadAdmin();
  const signKeyPem = signKey === undefined ? undefined : readSigningKey(signKey);
  return {
    ...selector,
    file,
    // Without `clearable`, no setting is null.
    ...(settingChanges(ctx.values, false) as Partial<PublishOptions>),
    allowDowngrade: ctx.values['allow-downgrade'] === true,
    disabled: ctx.values.disabled === true,
    ...(signKeyPem !== undefined ? { signKeyPem } : {}),
  };
}

export const publish: Command = {
  summary: 'upload an image and publish it as an update',
  usage: `Usage: updraft publish --product P --version V --file F [options]
Upload an image and publish it as an update. Nothing is visible until every step succeeded.
  --product P            product name
  --version V            SemVer 2.0 version of the image
  --file F               the image file
${SETTINGS_HELP}
  --allow-downgrade      offer to devices running a higher version (needs --policy)
  --disabled             publish disabled (updraft enable makes it available)
  --sign-key KEY.pem     sign the manifest with this Ed25519 private key (updraft keys generate)
  --cloud all            publish to every cloud of cdk-outputs.json`,
  options: {
    ...SELECTOR_OPTIONS,
    file: { type: 'string' },
    ...SETTINGS_OPTIONS,
    'allow-downgrade': { type: 'boolean' },
    disabled: { type: 'boolean' },
    'sign-key': { type: 'string' },
  },
  async run(ctx) {
    const input = await publishInput(ctx);
    const { policyWarnings, publishToClouds } = await loadAdmin();
    const { cloudNames, openCloud } = await import('../cloud.ts');
    const targets: CloudTarget[] = [];
    try {
      for (const name of cloudNames(ctx.cloudName, ctx.sources)) targets.push(openCloud(name, ctx.sources));
      let meter: ReturnType<typeof progressMeter> | undefined;
      const published = await publishToClouds(targets, input, {
        onValidated: () => warnAboutPolicy(policyWarnings(input.policy)),
        onUploadStart: (cloud) => {
          meter = progressMeter(`Uploading ${basename(input.file)} to ${cloud}`);
          return ctx.json ? undefined : meter.update;
        },
        onUploadEnd: () => meter?.done(),
        onPublished: (cloud, record) => {
          if (ctx.json) return;
          ctx.print(
            `Published ${record.product} ${record.version} to ${cloud}: update ${record.id}, ${record.size} bytes, sha256 ${record.checksum}${record.signature ? ', signed' : ''}${record.enabled ? '' : ' (disabled)'}`,
          );
        },
      });
      if (ctx.json) ctx.printJson(ctx.cloudName === 'all' ? published : published[0]);
    } finally {
      for (const t of targets) t.close();
    }
    return 0;
  },
};
