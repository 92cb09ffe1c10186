/**
 * A streaming HTTP/1.1 GET over node:net / node:tls for image downloads, reading every response into
 * one reused 64 KiB buffer (the socket `onread` option).
 *
 * Why not node:http: its response stream allocates a fresh Buffer per socket read, and at a few
 * hundred MiB/s that garbage outruns the collector by ~45 MiB of RSS, about as much as node itself
 * uses, on a device where memory is the scarce resource. The download needs a small subset of HTTP:
 * one GET per connection (`Connection: close`, so a resume is a new connection), a Range header,
 * and a body framed by Content-Length, chunked encoding or the end of the connection
 * (http-response.ts).
 *
 * Through a proxy (proxy.ts), an http target keeps the reused buffer; an https target reads through
 * a TLS socket layered on the tunnel, which node only lets deliver fresh Buffers ('data' events).
 * getFollowingRedirects adds bounded redirects on top.
 */
import net from 'node:net';
import tls from 'node:tls';
import { TransientError, UrlRefusedError } from './errors.ts';
import { type BodySink, ResponseParser } from './http-response.ts';
import {
  connectThroughProxy,
  type ProxySettings,
  processProxySettings,
  proxyFor,
  proxyRequestHeaders,
  requestTarget,
} from './proxy.ts';

export type { BodySink, ResponseHead } from './http-response.ts';

export interface GetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** The connection is cut when no byte arrives for this long. */
  readonly idleTimeoutMs: number;
  readonly signal?: AbortSignal;
  /** A pause after each socket read, in ms (`update.throttle`); 0 or absent for none. */
  readonly pauseBetweenReadsMs?: number;
  /** Proxies to use; by default this process's HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
  readonly proxy?: ProxySettings;
}

const READ_BUFFER_BYTES = 64 * 1024;

/** Resolves when the whole body was delivered; rejects with TransientError for network faults. */
export function streamGet(target: string, options: GetOptions, sink: BodySink): Promise<void> {
  const url = new URL(target);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new TransientError(`Unsupported URL scheme ${url.protocol}`));
  }
  let proxy: URL | undefined;
  try {
    proxy = proxyFor(url, options.proxy ?? processProxySettings());
  } catch (err) {
    return Promise.reject(err);
  }
  return new GetExchange(url, proxy, options, sink).run();
}

/** One GET on one connection: connect, send, feed reads to the parser, pause while the sink waits. */
class GetExchange {
  private readonly response: ResponseParser;
  private socket: net.Socket | undefined;
  private settled = false;
  /** A socket error, reported when the connection closes. */
  private failure: Error | undefined;
  /** The sink or a throttle pause holds the socket; a close meanwhile is handled after it. */
  private waiting = false;
  private closedWhileWaiting = false;
  private pacing: NodeJS.Timeout | undefined;
  private resolve: () => void = () => {};
  private reject: (err: Error) => void = () => {};
  private readonly onread = {
    buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
    callback: (n: number, buf: Uint8Array): boolean =>
      this.onRead(Buffer.from(buf.buffer, buf.byteOffset, n)),
  };

  constructor(
    private readonly url: URL,
    private readonly proxy: URL | undefined,
    private readonly options: GetOptions,
    sink: BodySink,
  ) {
    this.response = new ResponseParser(sink);
  }

  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const { signal } = this.options;
      if (signal?.aborted) return this.onAbort();
      signal?.addEventListener('abort', this.onAbort, { once: true });
      if (!this.proxy) return this.attach(this.connectDirect(), true);
      connectThroughProxy(this.url, this.proxy, {
        timeoutMs: this.options.idleTimeoutMs,
        onread: this.onread,
        ...(signal ? { signal } : {}),
      }).then(
        ({ socket, usesOnread }) => (this.settled ? socket.destroy() : this.attach(socket, usesOnread)),
        (err: Error) => this.finish(err),
      );
    });
  }

  private connectDirect(): net.Socket {
    const secure = this.url.protocol === 'https:';
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.url.port) || (secure ? 443 : 80);
    if (!secure) return net.connect({ host, port, onread: this.onread });
    // @types/node leaves `onread` out of tls.ConnectionOptions; TLSSocket honours it as a net.Socket option.
    const tlsOptions: tls.ConnectionOptions & Pick<net.TcpSocketConnectOpts, 'onread'> = {
      host,
      port,
      onread: this.onread,
      ALPNProtocols: ['http/1.1'],
      ...(net.isIP(host) ? {} : { servername: host }),
    };
    return tls.connect(tlsOptions);
  }

  private attach(socket: net.Socket, usesOnread: boolean): void {
    this.socket = socket;
    const { origin } = this.url;
    if (!usesOnread) {
      socket.on('data', (chunk: Buffer) => {
        if (!this.onRead(chunk)) socket.pause();
      });
    }
    socket.setNoDelay(true);
    // The origin names the server in errors; the path and query (a presigned signature) never appear.
    socket.setTimeout(this.options.idleTimeoutMs, () => {
      this.finish(new TransientError(`No data from ${origin} for ${this.options.idleTimeoutMs / 1000} s`));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.failure = new TransientError(`Image download from ${origin}: ${err.code ?? err.message}`, {
        cause: err,
      });
    });
    socket.on('close', () => {
      if (this.waiting) this.closedWhileWaiting = true;
      else this.onClose();
    });
    const headers = Object.entries({
      ...this.options.headers,
      ...proxyRequestHeaders(this.url, this.proxy),
      host: this.url.host,
      connection: 'close',
    })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`GET ${requestTarget(this.url, this.proxy)} HTTP/1.1\r\n${headers}\r\n`);
  }

  /** Takes one socket read; returns whether to keep reading now. */
  private onRead(chunk: Buffer): boolean {
    if (this.settled) return false;
    let wait: Promise<void> | undefined;
    try {
      wait = this.response.feed(chunk);
    } catch (err) {
      this.finish(err as Error);
      return false;
    }
    if (!wait && this.response.complete) {
      this.finish();
      return false;
    }
    const pause = this.options.pauseBetweenReadsMs ?? 0;
    if (pause > 0) wait = wait ? wait.then(() => this.pace(pause)) : this.pace(pause);
    if (!wait) return true;
    // Completion, if this read completed the body, is seen once the sink is done with it.
    this.afterWait(wait);
    return false;
  }

  /** The socket stays paused until the sink is ready and every byte of the last read was delivered. */
  private afterWait(wait: Promise<void>): void {
    this.waiting = true;
    wait.then(
      () => {
        this.waiting = false;
        if (this.settled) return;
        let next: Promise<void> | undefined;
        try {
          next = this.response.resume();
        } catch (err) {
          this.finish(err as Error);
          return;
        }
        if (this.response.complete) this.finish();
        else if (next) this.afterWait(next);
        else if (this.closedWhileWaiting) this.onClose();
        else this.socket?.resume();
      },
      (err: Error) => this.finish(err),
    );
  }

  /** A throttle pause; the idle timer measures the network, so it stops meanwhile. */
  private pace(ms: number): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.socket?.setTimeout(0);
    return new Promise((resolve) => {
      this.pacing = setTimeout(() => {
        this.socket?.setTimeout(this.options.idleTimeoutMs);
        resolve();
      }, ms);
    });
  }

  private onClose(): void {
    if (this.settled) return;
    // A body framed by the end of the connection is complete now; any other is cut short.
    if (!this.failure && this.response.endOfStream()) this.finish();
    else {
      const cut = `Connection to ${this.url.origin} closed after ${this.response.bodyBytes} body bytes`;
      this.finish(this.failure ?? new TransientError(cut));
    }
  }

  private readonly onAbort = (): void => this.finish(this.options.signal!.reason as Error);

  private finish(err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.pacing);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.socket?.destroy();
    if (err) this.reject(err);
    else this.resolve();
  }
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
export const MAX_REDIRECTS = 5;

export interface RedirectOptions {
  readonly maxRedirects?: number;
  /** Told about each redirect followed. */
  readonly onRedirect?: (from: URL, to: URL) => void;
}

/** Thrown from inside a request to end it at the head of a redirect. */
class Redirected extends Error {
  constructor(
    readonly status: number,
    readonly location: string | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

/**
 * streamGet following up to 5 redirects (301, 302, 303, 307, 308), each with the same request
 * headers (a Range stays). Once on https, never to http. Resolves with the URL that answered; a
 * refused redirect is an UrlRefusedError (this URL will not work again; a new checkin may).
 */
export async function getFollowingRedirects(
  target: string,
  options: GetOptions,
  sink: BodySink,
  redirects: RedirectOptions = {},
): Promise<URL> {
  const max = redirects.maxRedirects ?? MAX_REDIRECTS;
  let url = new URL(target);
  let secure = url.protocol === 'https:';
  for (let followed = 0; ; followed++) {
    try {
      await streamGet(url.href, options, {
        onHead: (head) => {
          if (REDIRECT_STATUSES.has(head.status)) throw new Redirected(head.status, head.headers.location);
          sink.onHead(head);
        },
        onData: (chunk) => sink.onData(chunk),
      });
      return url;
    } catch (err) {
      if (!(err instanceof Redirected)) throw err;
      const next = redirectTarget(url, err);
      if (followed >= max) {
        throw new UrlRefusedError(
          `Image URL at ${new URL(target).origin} redirected more than ${max} times (the last to ${next.origin})`,
        );
      }
      if (secure && next.protocol !== 'https:') {
        throw new UrlRefusedError(
          `Image URL at ${url.origin} redirected to ${next.origin}: refused, a download on https stays on https`,
        );
      }
      redirects.onRedirect?.(url, next);
      url = next;
      secure ||= url.protocol === 'https:';
    }
  }
}

function redirectTarget(from: URL, redirect: Redirected): URL {
  let next: URL | undefined;
  try {
    next = redirect.location ? new URL(redirect.location, from) : undefined;
  } catch {
    next = undefined;
  }
  if (!next || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
    throw new UrlRefusedError(
      `Image URL at ${from.origin} answered HTTP ${redirect.status} without a usable http(s) Location`,
    );
  }
  return next;
}
