/** `updraft console`: serves the web console (console/) for one cloud on loopback until Ctrl-C. */
import { jsonLogger } from '#functions/log.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';

const DEFAULT_PRODUCT = 'demo';

function consolePort(values: Parameters<typeof numberFlag>[0]): number {
  const port = numberFlag(values, 'port') ?? 4080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`Invalid --port ${port}: use a port number 0–65535`);
  }
  return port;
}

export const consoleCommand: Command = {
  summary: 'serve the web console for a cloud on loopback (its URL carries a secret)',
  usage: `Usage: updraft console [--port N] [--host H] [--product P]
Serves the web console for the cloud named by --cloud and prints its URL with a secret that signs
a browser in; runs until Ctrl-C. It acts with your own AWS credentials, as the CLI does.
  --port N               port (default 4080; 0 picks a free one)
  --host H               address (default 127.0.0.1; keep it on loopback)
  --product P            the product the page opens with (default ${DEFAULT_PRODUCT})`,
  options: { port: { type: 'string' }, host: { type: 'string' }, product: { type: 'string' } },
  async run(ctx) {
    const port = consolePort(ctx.values);
    const { startCloudConsole } = await import('#console/index.ts');
    const web = await startCloudConsole({
      ...ctx.sources,
      cloudName: ctx.cloudName,
      defaultProduct: str(ctx.values, 'product') ?? DEFAULT_PRODUCT,
      host: str(ctx.values, 'host') ?? '127.0.0.1',
      port,
      log: jsonLogger('updraft-console', true),
    });
    ctx.print(`Web console for cloud ${ctx.cloudName} (the secret in the URL signs you in):\n  ${web.url}`);
    ctx.print('Press Ctrl-C to stop.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await web.stop();
    return 0;
  },
};
