/** `updraft keys generate`: an Ed25519 key pair for signing manifests. */
import { type Command, loadAdmin, str } from '../command.ts';

export const keysGenerate: Command = {
  summary: 'create an Ed25519 signing key pair',
  usage: `Usage: updraft keys generate [--out FILE]
Create an Ed25519 key pair for signing manifests (publish --sign-key). Without --out, prints
both PEM keys; with --out, writes the private key to FILE (mode 0600) and the public key to
FILE.pub. Either way prints the public key in the form of the agent's update.keys.
  --out FILE             where to write the private key`,
  options: { out: { type: 'string' } },
  async run(ctx) {
    const { generateKeys } = await loadAdmin();
    const keys = generateKeys(str(ctx.values, 'out'));
    if (ctx.json) {
      ctx.printJson(keys);
      return 0;
    }
    if (keys.privateKeyPem !== undefined)
      ctx.print(`${keys.privateKeyPem.trimEnd()}\n${keys.publicKeyPem.trimEnd()}`);
    else {
      const out = keys.privateKeyFile;
      ctx.print(
        `Private key: ${out} (keep it secret; publish --sign-key ${out})\nPublic key:  ${keys.publicKeyFile}`,
      );
    }
    ctx.print(`\nFor the agent's config/ioto.json5:  update: { keys: ['${keys.publicKey}'] }`);
    return 0;
  },
};
