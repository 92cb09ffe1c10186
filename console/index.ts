/**
 * The web console (DESIGN §11): a loopback HTTP server over the admin operations of one or more
 * clouds, and the page it serves.
 *
 *   server.ts     the listener: access check, API routes, the built page
 *   access.ts     secret → cookie, Host and Origin checks (one middleware)
 *   routes.ts     the JSON API, one admin operation per route, cloud routes under /api/clouds/:cloud
 *   respond.ts    security headers; errors → one-line answers, in one place
 *   assets.ts     esbuild bundle of ui/ (built when missing or stale), served from memory
 *   ui/           the page: Preact views over one typed client (ui/api/), uPlot charts
 */
import { type CloudSources, type CloudTarget, openCloud } from '#cli/cloud.ts';
import type { Logger } from '#functions/log.ts';
import { type RunningConsole, startConsole } from './server.ts';

export { DEFAULT_CONSOLE_HOST, DEFAULT_CONSOLE_PORT, type RunningConsole, startConsole } from './server.ts';

export interface CloudConsoleOptions extends CloudSources {
  /** `local` (npm start's cloud) and/or deployed clouds' names; the page opens with the first. */
  readonly cloudNames: readonly string[];
  readonly defaultProduct: string;
  readonly host?: string;
  readonly port?: number;
  readonly log: Logger;
}

/** Opens each cloud the way the CLI does and serves the console for them; stopping closes all. */
export async function startCloudConsole(options: CloudConsoleOptions): Promise<RunningConsole> {
  const clouds: CloudTarget[] = [];
  const closeAll = () => {
    for (const cloud of clouds) cloud.close();
  };
  try {
    for (const name of options.cloudNames) clouds.push(openCloud(name, options));
    const running = await startConsole({
      clouds,
      defaultProduct: options.defaultProduct,
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      log: options.log,
    });
    return {
      ...running,
      stop: async () => {
        await running.stop();
        closeAll();
      },
    };
  } catch (err) {
    closeAll();
    throw err;
  }
}
