/**
 * Minimal HTTP over node:http/node:https: no fetch (its streams are slower and heavier on a small
 * device), no dependencies. Used for the checkin and report calls and by the image download.
 * Through a proxy (proxy.ts) the request goes over the socket proxy.ts opened.
 */
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { HttpStatusError, TransientError } from './errors.ts';
import {
  connectThroughProxy,
  type ProxySettings,
  processProxySettings,
  proxyFor,
  proxyRequestHeaders,
  requestTarget,
} from './proxy.ts';

function transportFor(url: URL): typeof http | typeof https {
  if (url.protocol === 'http:') return http;
  if (url.protocol === 'https:') return https;
  throw new TransientError(`Unsupported URL scheme ${url.protocol}`);
}

/** Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

const MAX_ANSWER_BYTES = 64 * 1024;

export interface PostOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Proxies to use; by default this process's HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
  readonly proxy?: ProxySettings;
}

/**
 * POSTs a JSON body and returns the parsed JSON answer. Non-200 answers become HttpStatusError with
 * the server's one-line body; network failures, timeouts and unparseable answers become TransientError.
 */
export async function postJson(
  target: string,
  token: string,
  body: unknown,
  options: PostOptions,
): Promise<unknown> {
  const url = new URL(target);
  transportFor(url);
  const payload = Buffer.from(JSON.stringify(body));
  const headers = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    'content-length': payload.length,
    accept: 'application/json',
  };
  const proxy = proxyFor(url, options.proxy ?? processProxySettings());
  const signal = options.signal ? { signal: options.signal } : {};
  const socket = proxy
    ? (await connectThroughProxy(url, proxy, { timeoutMs: options.timeoutMs, ...signal })).socket
    : undefined;
  return new Promise((resolve, reject) => {
    const req = socket
      ? requestOver(socket, url, proxy, headers, options.signal)
      : transportFor(url).request(url, { method: 'POST', headers, signal: options.signal });
    req.setTimeout(options.timeoutMs, () => {
      req.destroy(new TransientError(`No answer from ${url.origin} within ${options.timeoutMs / 1000} s`));
    });
    req.on('error', (err) => reject(asTransient(err, url)));
    req.on('response', (res) => {
      readBody(res, MAX_ANSWER_BYTES).then(
        (text) => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            const line = text.split('\n', 1)[0]!.trim().slice(0, 300) || `HTTP ${status}`;
            const retryAfter =
              status === 429 || status === 503
                ? parseRetryAfter(headerOf(res, 'retry-after'), Date.now())
                : undefined;
            reject(new HttpStatusError(status, `${url.pathname}: HTTP ${status}: ${line}`, retryAfter));
            return;
          }
          try {
            resolve(text === '' ? {} : JSON.parse(text));
          } catch {
            reject(new TransientError(`${url.pathname}: answer is not JSON`));
          }
        },
        (err: unknown) => reject(asTransient(err, url)),
      );
    });
    req.end(payload);
  });
}

/** A POST over a socket through `proxy` (connected to it, or a TLS tunnel to the target). */
function requestOver(
  socket: Socket,
  url: URL,
  proxy: URL | undefined,
  headers: Record<string, string | number>,
  signal: AbortSignal | undefined,
): ClientRequest {
  return http.request({
    createConnection: () => socket,
    method: 'POST',
    path: requestTarget(url, proxy),
    setHost: false,
    headers: { host: url.host, ...proxyRequestHeaders(url, proxy), ...headers },
    signal,
  });
}

function headerOf(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        res.destroy(new TransientError(`Answer larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function asTransient(err: unknown, url: URL): Error {
  if (err instanceof TransientError || err instanceof HttpStatusError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new TransientError(`Cannot reach ${url.origin}: ${code ?? (err as Error).message}`, { cause: err });
}
