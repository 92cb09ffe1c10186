/**
 * `updraft console`: serves the web console (console/) for one cloud, or every cloud with
 * `--cloud all`, on loopback until Ctrl-C; `--open` hands its URL to the desktop's browser.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { jsonLogger } from '#functions/log.ts';
import { readCloudFile } from '#local/cloud-file.ts';
import type { CloudSources } from '../cloud.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { CliError, UsageError } from '../errors.ts';
import { numberFlag } from '../flags.ts';

const DEFAULT_PRODUCT = 'demo';

function consolePort(values: Parameters<typeof numberFlag>[0]): number {
  const port = numberFlag(values, 'port') ?? 4080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`Invalid --port ${port}: use a port number 0–65535`);
  }
  return port;
}

/** Whether npm start's cloud runs: its cloud file exists and names a live process. */
function localCloudRuns(dataDir: string): boolean {
  try {
    readCloudFile(dataDir);
    return true;
  } catch {
    return false;
  }
}

/**
 * The clouds `--cloud` names for the console: one, or for `all` the local cloud when npm start
 * runs, then every deployed cloud of the outputs file when there is one.
 */
async function consoleCloudNames(name: string, sources: CloudSources): Promise<string[]> {
  const { ALL_CLOUDS, LOCAL_CLOUD, cloudNames } = await import('../cloud.ts');
  if (name !== ALL_CLOUDS) return [name];
  const local = localCloudRuns(sources.dataDir) ? [LOCAL_CLOUD] : [];
  const deployed = existsSync(sources.outputsFile) ? cloudNames(ALL_CLOUDS, sources) : [];
  const names = [...local, ...deployed];
  if (names.length === 0) {
    throw new CliError(
      `No clouds to serve: start the local cloud with npm start, or deploy one (${sources.outputsFile} not found)`,
    );
  }
  return names;
}

/** The desktop's command that opens a URL in the default browser. */
function browserOpener(url: string): { command: string; args: string[] } {
  if (process.platform === 'darwin') return { command: 'open', args: [url] };
  // `start` is a cmd builtin; its first quoted argument is a window title.
  if (process.platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""', url] };
  return { command: 'xdg-open', args: [url] };
}

/** Opens `url` in a browser; resolves with a one-line note when no opener could be started. */
export function openBrowser(url: string): Promise<string | undefined> {
  const { command, args } = browserOpener(url);
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.once('error', (err) =>
      resolve(`Cannot open a browser (${command}: ${err.message}): open the URL above yourself`),
    );
    child.once('spawn', () => {
      child.unref();
      resolve(undefined);
    });
  });
}

export const consoleCommand: Command = {
  summary: 'serve the web console for one or all clouds on loopback (its URL carries a secret)',
  usage: `Usage: updraft console [--cloud NAME|all] [--port N] [--host H] [--product P] [--open]
Serves the web console for the cloud named by --cloud (all: the local cloud and every cloud of the
outputs file, with a switcher in the page) and prints its URL with a secret that signs a browser in;
runs until Ctrl-C. It acts with your own AWS credentials, as the CLI does.
  --port N               port (default 4080; 0 picks a free one)
  --host H               address (default 127.0.0.1; keep it on loopback)
  --product P            the product the page opens with (default ${DEFAULT_PRODUCT})
  --open                 open the URL in your browser (xdg-open, open or start)`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    product: { type: 'string' },
    open: { type: 'boolean' },
  },
  async run(ctx) {
    const port = consolePort(ctx.values);
    const cloudNames = await consoleCloudNames(ctx.cloudName, ctx.sources);
    const { startCloudConsole } = await import('#console/index.ts');
    const web = await startCloudConsole({
      ...ctx.sources,
      cloudNames,
      defaultProduct: str(ctx.values, 'product') ?? DEFAULT_PRODUCT,
      host: str(ctx.values, 'host') ?? '127.0.0.1',
      port,
      log: jsonLogger('updraft-console', true),
    });
    const served = cloudNames.length === 1 ? `cloud ${cloudNames[0]}` : `clouds ${cloudNames.join(', ')}`;
    ctx.print(`Web console for ${served} (the secret in the URL signs you in):\n  ${web.url}`);
    if (ctx.values.open === true) {
      const note = await openBrowser(web.url);
      if (note) ctx.print(note);
    }
    ctx.print('Press Ctrl-C to stop.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await web.stop();
    return 0;
  },
};
