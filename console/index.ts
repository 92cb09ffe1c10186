/**
 * The web console (DESIGN §11): a loopback HTTP server over the admin operations of one cloud,
 * and the page it serves.
 *
 *   server.ts     the listener: access check, API routes, the built page
 *   access.ts     secret → cookie, Host and Origin checks (one middleware)
 *   routes.ts     the JSON API, one admin operation per route
 *   respond.ts    security headers; errors → one-line answers, in one place
 *   assets.ts     esbuild bundle of ui/ (built when missing or stale), served from memory
 *   ui/           the page: Preact views over one typed client (ui/api/), uPlot charts
 */
import { type CloudSources, openCloud } from '#cli/cloud.ts';
import type { Logger } from '#functions/log.ts';
import { type RunningConsole, startConsole } from './server.ts';

export { DEFAULT_CONSOLE_HOST, DEFAULT_CONSOLE_PORT, type RunningConsole, startConsole } from './server.ts';

export interface CloudConsoleOptions extends CloudSources {
  /** `local` (npm start's cloud) or a deployed cloud's name. */
  readonly cloudName: string;
  readonly defaultProduct: string;
  readonly host?: string;
  readonly port?: number;
  readonly log: Logger;
}

/** Opens a cloud the way the CLI does and serves the console for it; stopping closes both. */
export async function startCloudConsole(options: CloudConsoleOptions): Promise<RunningConsole> {
  const cloud = openCloud(options.cloudName, options);
  try {
    const running = await startConsole({
      cloud,
      defaultProduct: options.defaultProduct,
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      log: options.log,
    });
    return {
      ...running,
      stop: async () => {
        await running.stop();
        cloud.close();
      },
    };
  } catch (err) {
    cloud.close();
    throw err;
  }
}
