/**
 * The local cloud's listeners (the device API and the image store): serving the app over node:http,
 * and staying up under slow or abusive clients. Each listener caps its connections below the fd
 * limit, drops clients whose headers or body trickle, evicts the oldest idle connection when
 * nearly full (so held-open sockets cannot lock devices out), and logs such events as one line
 * per 10 s.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { MAX_BODY_BYTES } from '#core/device.ts';
import type { App } from '#functions/app.ts';
import type { Logger } from '#functions/log.ts';

export interface ListenerLimits {
  /** Connections served at once; more are refused. Default: from the fd limit (connectionBudget). */
  readonly maxConnections?: number;
  /** A request whose headers take longer is answered 408 and closed. */
  readonly headersTimeoutMs?: number;
  /** A request whose headers and body take longer is answered 408 and closed (0: no limit). */
  readonly requestTimeoutMs?: number;
  /**
   * A connection on which no byte moved either way for this long is closed: a download nobody
   * reads, which the timeouts above (they end once the request is in) never reach. Default: none.
   */
  readonly idleTimeoutMs?: number;
}

export const HEADERS_TIMEOUT_MS = 5000;
/** Device requests are small (MAX_BODY_BYTES): ten seconds is plenty even on a slow link. */
export const API_REQUEST_TIMEOUT_MS = 10_000;
/** Node checks headersTimeout/requestTimeout only this often (30 s by default). */
const CHECK_INTERVAL_MS = 1000;
const LOG_EVERY_MS = 10_000;

/**
 * Connections per listener from the soft fd limit: two listeners, an image download holds a
 * socket and a file, and the stores keep some files open. ulimit -n 1024 gives 268 each.
 */
export function connectionBudget(): number {
  let limit = 1024;
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line?.[1]) limit = line[1] === 'unlimited' ? 1_000_000 : Number(line[1]);
  } catch {
    // No /proc: assume the common default.
  }
  return Math.max(16, Math.min(100_000, Math.floor((limit - 128) * 0.3)));
}

export function createListener(
  handler: RequestListener,
  tls: { readonly cert: string; readonly key: string } | undefined,
  limits: ListenerLimits,
): Server {
  const options = {
    connectionsCheckingInterval: CHECK_INTERVAL_MS,
    headersTimeout: limits.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
    requestTimeout: limits.requestTimeoutMs ?? API_REQUEST_TIMEOUT_MS,
  };
  const server = tls
    ? createHttpsServer({ ...options, cert: tls.cert, key: tls.key }, handler)
    : createServer(options, handler);
  server.maxConnections = limits.maxConnections ?? connectionBudget();
  if (limits.idleTimeoutMs) server.setTimeout(limits.idleTimeoutMs);
  return server;
}

/**
 * The limits of createListener on a server made elsewhere (dynalite's): set before it listens, when
 * Node reads the checking interval.
 */
export function limitServer(server: Server, limits: ListenerLimits): void {
  // A public property of http.Server since Node 18.10, not yet in @types/node.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    CHECK_INTERVAL_MS;
  server.headersTimeout = limits.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  server.requestTimeout = limits.requestTimeoutMs ?? API_REQUEST_TIMEOUT_MS;
  server.maxConnections = limits.maxConnections ?? connectionBudget();
}

/** Counts dropped clients and logs them as one line per LOG_EVERY_MS. */
export class DropLog {
  readonly #counts = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly listener: string,
    private readonly log: Logger,
  ) {}

  count(reason: string): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
    this.#timer ??= setTimeout(() => this.flush(), LOG_EVERY_MS).unref();
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#counts.size === 0) return;
    this.log.warn('clients dropped', { listener: this.listener, ...Object.fromEntries(this.#counts) });
    this.#counts.clear();
  }
}

/**
 * Guards a listener: slow or malformed clients get a short answer and are closed without a stack
 * trace in the log; near the cap, a new connection evicts the longest-idle one (a socket that
 * never finished its headers, or a kept-alive one between requests).
 */
export function guardListener(server: Server, drops: DropLog): void {
  const idle = new Set<Socket>();
  let open = 0;
  const evictAt = Math.max(1, Math.floor(server.maxConnections * 0.9));
  server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => {
      open--;
      idle.delete(socket);
    });
    if (open > evictAt) {
      const oldest = idle.values().next().value;
      if (oldest) {
        idle.delete(oldest);
        oldest.destroy();
        drops.count('evicted');
      }
    }
    idle.add(socket);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    idle.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) idle.add(socket);
    });
  });
  server.on('drop', () => drops.count('refused at the connection cap'));
  // Only with idleTimeoutMs; a listener here replaces Node's default, which destroys the socket too.
  server.on('timeout', (socket: Socket) => {
    drops.count('stalled');
    socket.destroy();
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    drops.count(timeout ? 'too slow' : err.code === 'ECONNRESET' ? 'reset' : 'malformed');
    if (socket.writable && !timeout && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else if (socket.writable && timeout) {
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
    socket.destroySoon();
  });
}

export function urlOf(server: Server, tls: boolean, host: string): string {
  const { port } = server.address() as AddressInfo;
  const name = host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${name}:${port}`;
}

export async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  server.listen(port, host);
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new Error(`${what} port ${host}:${port} is in use: stop what uses it or pass another port`);
    if (code === 'EACCES')
      throw new Error(`${what} port ${host}:${port} needs privileges: run as root or pick a port ≥ 1024`);
    if (code === 'EADDRNOTAVAIL') throw new Error(`${what} host ${host} is not an address of this machine`);
    throw err;
  }
}

/** Reads a request body up to MAX_BODY_BYTES; undefined when it is larger. */
function readBody(req: IncomingMessage): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
      req.resume();
      resolve(undefined);
      return;
    }
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
      } else if (!first) {
        first = chunk;
      } else {
        chunks ??= [first];
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(chunks ? Buffer.concat(chunks) : (first ?? EMPTY)));
    req.on('error', reject);
  });
}

const EMPTY = new Uint8Array(0);

/**
 * `content-type` → `Content-Type`. Node writes header names as given, and the EmbedThis C updater
 * looks for `Content-Length:` case-sensitively.
 */
function canonicalHeader(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Serves the app over node:http: fixed Content-Length, never chunked (DESIGN §2). */
export function nodeHandler(app: App, log: Logger, drops?: DropLog) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const send = (status: number, headers: Readonly<Record<string, string>>, body: string) => {
      const bytes = Buffer.from(body);
      const out: Record<string, string | number> = { 'Content-Length': bytes.length };
      for (const name in headers) out[canonicalHeader(name)] = headers[name]!;
      res.writeHead(status, out);
      res.end(bytes);
    };
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    readBody(req)
      .then(async (body) => {
        if (body === undefined) {
          res.shouldKeepAlive = false;
          send(
            413,
            { 'content-type': 'text/plain; charset=utf-8', connection: 'close' },
            `Request body over ${MAX_BODY_BYTES} bytes\n`,
          );
          return;
        }
        const out = await app({
          method: req.method ?? 'GET',
          path,
          headers: req.headers as Record<string, string>,
          body,
        });
        send(out.status, out.headers, out.body);
      })
      .catch((err: unknown) => {
        if (req.destroyed && !req.complete) {
          // The client went away (or was dropped as too slow) mid-body: nothing to answer, nothing broke.
          drops?.count('aborted');
          res.destroy();
          return;
        }
        log.error('request failed', { error: err });
        if (!res.headersSent) send(500, { 'content-type': 'text/plain; charset=utf-8' }, 'Internal error\n');
        else res.destroy();
      });
  };
}
