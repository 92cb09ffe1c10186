/**
 * The console's listener: node:http on loopback by default. Each request goes through the access
 * check (console/access.ts), then to the API routes or the built page; anything thrown becomes a
 * one-line answer in one place (console/respond.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NamedCloud } from '#admin/index.ts';
import type { Logger } from '#functions/log.ts';
import { Access, consoleUrl, newSecret } from './access.ts';
import { type Asset, DEFAULT_ASSETS_DIR, ensureUiBuilt, loadAssets } from './assets.ts';
import { BadRequestError, RouteNotFoundError } from './errors.ts';
import { errorAnswer, send, sendError, sendJson } from './respond.ts';
import { Router } from './router.ts';
import { apiRoutes } from './routes.ts';

export const DEFAULT_CONSOLE_HOST = '127.0.0.1';
export const DEFAULT_CONSOLE_PORT = 4080;

export interface ConsoleOptions {
  /** The clouds served (at least one; the page opens with the first). */
  readonly clouds: readonly NamedCloud[];
  readonly defaultProduct: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Where the built page lives (built there when missing or stale). */
  readonly assetsDir?: string;
  /** Fixed secret (tests); a random one otherwise. */
  readonly secret?: string;
  readonly log: Logger;
}

export interface RunningConsole {
  /** The URL to open, with its secret. */
  readonly url: string;
  /** The origin, without the secret. */
  readonly origin: string;
  readonly secret: string;
  readonly port: number;
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `Console port ${host}:${port} is in use: pass --console-port N (or 0 for any free port)`,
            )
          : err,
      );
    });
    server.listen(port, host, () => resolve());
  });
}

function serveAsset(req: IncomingMessage, res: ServerResponse, asset: Asset | undefined, path: string): void {
  const method = req.method ?? 'GET';
  if (!asset) throw new RouteNotFoundError(method, path);
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? asset.gzipped : asset.body;
  // The page's files change only with a rebuild; they still need the cookie, so no shared caches.
  send(res, 200, method === 'HEAD' ? Buffer.alloc(0) : body, {
    'Content-Type': asset.type,
    'Cache-Control': 'private, no-cache',
    Vary: 'Accept-Encoding',
    ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
  });
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const host = options.host ?? DEFAULT_CONSOLE_HOST;
  const assetsDir = options.assetsDir ?? DEFAULT_ASSETS_DIR;
  await ensureUiBuilt(assetsDir);
  const assets = loadAssets(assetsDir);
  if (options.clouds.length === 0) throw new Error('The console needs at least one cloud to serve');
  const router = new Router(apiRoutes({ clouds: options.clouds, defaultProduct: options.defaultProduct }));
  const secret = options.secret ?? newSecret();
  let access: Access | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const decision = access!.check(req, url);
    if (decision.kind === 'exchange') {
      send(res, 303, '', {
        Location: decision.location,
        'Set-Cookie': decision.cookie,
        'Cache-Control': 'no-store',
      });
      return;
    }
    const method = req.method ?? 'GET';
    if (!url.pathname.startsWith('/api/')) {
      if (method !== 'GET' && method !== 'HEAD') throw new RouteNotFoundError(method, url.pathname);
      return serveAsset(req, res, assets.get(url.pathname), url.pathname);
    }
    const { route, params } = router.match(method, url.pathname);
    const answer = await route.handle({ req, url, params });
    sendJson(res, answer.status, answer.body);
  };

  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      // Thrown here it would end the process: anyone who can connect could stop the console.
      res.shouldKeepAlive = false;
      sendError(res, '/', errorAnswer(new BadRequestError('Malformed request URL'), options.log));
      return;
    }
    handle(req, res, url).catch((err: unknown) => {
      // A refused or failed request may leave an upload unread: close rather than read it all.
      if (!req.complete) res.shouldKeepAlive = false;
      sendError(res, url.pathname, errorAnswer(err, options.log));
    });
  });
  server.requestTimeout = 0; // uploads of large images may take long; the admin operation bounds them.
  await listen(server, options.port ?? DEFAULT_CONSOLE_PORT, host);
  const port = (server.address() as AddressInfo).port;
  if (!/^(127\.|::1$|localhost$)/.test(host)) {
    // The secret and cookie travel in clear HTTP: off loopback, anyone on the path can read them.
    options.log.warn('the console is served off loopback over plain HTTP: use an SSH tunnel instead', {
      host,
    });
  }
  access = new Access({ host, port }, secret);
  const url = consoleUrl({ host, port }, secret);
  return {
    url,
    origin: new URL(url).origin,
    secret,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
