/**
 * Devices behind a proxy (DESIGN §7): which proxy a URL goes through, from `HTTPS_PROXY`,
 * `HTTP_PROXY` and `NO_PROXY` (and their lower-case spellings, which win when both are set, as in
 * curl), and a connection through it. An https target gets a CONNECT tunnel with TLS inside it,
 * verified against the target's certificate and name as a direct connection would be; an http
 * target gets its request sent to the proxy with the absolute URI. Credentials in the proxy URL's
 * userinfo become a `Proxy-Authorization: Basic` header.
 *
 * Hand-written on node:net / node:tls rather than a proxy-agent package: the agent carries no
 * dependency a device would not want, and the image download needs the raw socket anyway
 * (http-get.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import { TransientError } from './errors.ts';

export interface ProxySettings {
  /** Proxy for http:// targets. */
  readonly http?: URL;
  /** Proxy for https:// targets. */
  readonly https?: URL;
  /** Targets that go direct. */
  readonly noProxy: NoProxy;
}

interface NoProxy {
  /** `NO_PROXY=*`: every target goes direct. */
  readonly all: boolean;
  readonly hosts: readonly { readonly host: string; readonly port?: number }[];
  readonly networks: net.BlockList;
}

/** A proxy variable holds something that is not an http(s) proxy URL. */
export class ProxySettingError extends Error {
  override readonly name = 'ProxySettingError';
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

/** Reads the proxy variables; throws ProxySettingError naming the variable for a bad one. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const http = proxyVariable(env, 'http_proxy', 'HTTP_PROXY');
  const https = proxyVariable(env, 'https_proxy', 'HTTPS_PROXY');
  const noProxy = env.no_proxy || env.NO_PROXY || '';
  return {
    ...(http ? { http: parseProxyUrl(http.name, http.value) } : {}),
    ...(https ? { https: parseProxyUrl(https.name, https.value) } : {}),
    noProxy: parseNoProxy(noProxy),
  };
}

let processSettings: ProxySettings | undefined;

/** This process's proxy settings, read once from its environment on first use. */
export function processProxySettings(): ProxySettings {
  processSettings ??= proxySettingsFromEnv(process.env);
  return processSettings;
}

function proxyVariable(env: NodeJS.ProcessEnv, lower: string, upper: string) {
  if (env[lower]) return { name: lower, value: env[lower] };
  if (env[upper]) return { name: upper, value: env[upper] };
  return undefined;
}

function parseProxyUrl(variable: string, value: string): URL {
  // curl takes "proxy.example:3128" for "http://proxy.example:3128".
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxySettingError(
      variable,
      `${JSON.stringify(value)} is not a URL; e.g. http://proxy.example:3128`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxySettingError(
      variable,
      `${url.protocol} proxies are not supported; use an http:// or https:// proxy`,
    );
  }
  if (!url.hostname) throw new ProxySettingError(variable, `${JSON.stringify(value)} names no host`);
  return url;
}

/** Comma- or space-separated: `*`, `host`, `.domain` or `*.domain`, `host:port`, `[v6]:port`, `10.0.0.0/8`. */
function parseNoProxy(value: string): NoProxy {
  const hosts: { host: string; port?: number }[] = [];
  const networks = new net.BlockList();
  let all = false;
  for (const entry of value.toLowerCase().split(/[\s,]+/)) {
    if (entry === '') continue;
    if (entry === '*') {
      all = true;
      continue;
    }
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    const family = cidr ? net.isIP(cidr[1]!) : 0;
    if (cidr && family !== 0 && Number(cidr[2]) <= (family === 4 ? 32 : 128)) {
      networks.addSubnet(cidr[1]!, Number(cidr[2]), family === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const hostPort = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+)(?::(\d+))?$/.exec(entry);
    // A bare IPv6 address has colons of its own.
    const [host, port] = hostPort ? [hostPort[1]!, hostPort[2]] : [entry, undefined];
    hosts.push({ host: host.replace(/^\*?\./, ''), ...(port ? { port: Number(port) } : {}) });
  }
  return { all, hosts, networks };
}

/** The proxy `url` goes through, or undefined when it goes direct. */
export function proxyFor(url: URL, settings: ProxySettings): URL | undefined {
  const proxy = url.protocol === 'https:' ? settings.https : settings.http;
  if (!proxy || bypasses(url, settings.noProxy)) return undefined;
  return proxy;
}

function bypasses(url: URL, noProxy: NoProxy): boolean {
  if (noProxy.all) return true;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const family = net.isIP(host);
  if (family !== 0 && noProxy.networks.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
  return noProxy.hosts.some(
    (rule) =>
      (rule.port === undefined || rule.port === port) &&
      (host === rule.host || (family === 0 && host.endsWith(`.${rule.host}`))),
  );
}

/** `Proxy-Authorization` value for a proxy URL with userinfo. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(user).toString('base64')}`;
}

/** The request target for `url` through `proxy`: the absolute URI for http, the path in a tunnel. */
export function requestTarget(url: URL, proxy: URL | undefined): string {
  const path = `${url.pathname}${url.search}`;
  return proxy && url.protocol === 'http:' ? `${url.origin}${path}` : path;
}

/** Headers the request itself carries for the proxy (an http target's credentials). */
export function proxyRequestHeaders(url: URL, proxy: URL | undefined): Record<string, string> {
  const auth = proxy && url.protocol === 'http:' ? proxyAuthorization(proxy) : undefined;
  return auth ? { 'proxy-authorization': auth } : {};
}

export interface ProxyConnectOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** For an http target: read the proxy connection through this buffer (net.Socket `onread`). */
  readonly onread?: net.OnReadOpts;
}

export interface ProxiedSocket {
  readonly socket: net.Socket;
  /** Whether `options.onread` delivers its reads; otherwise they arrive as 'data' events. */
  readonly usesOnread: boolean;
}

/**
 * A socket through `proxy` ready for an HTTP request to `url`: connected to the proxy for an http
 * target, or TLS-established with the target through a CONNECT tunnel for an https one. Rejects with
 * a one-line TransientError naming the proxy (its origin: credentials never appear).
 */
export async function connectThroughProxy(
  url: URL,
  proxy: URL,
  options: ProxyConnectOptions,
): Promise<ProxiedSocket> {
  const tunnel = url.protocol === 'https:';
  const onread = tunnel ? undefined : options.onread;
  const socket = await step<net.Socket>(options, `Cannot reach proxy ${proxy.origin}`, (done) => {
    const host = bareHost(proxy);
    const port = Number(proxy.port) || (proxy.protocol === 'https:' ? 443 : 80);
    const s =
      proxy.protocol === 'https:'
        ? tls.connect({
            host,
            port,
            ...serverName(host),
            ...(onread ? { onread } : {}),
          } as tls.ConnectionOptions)
        : net.connect({ host, port, ...(onread ? { onread } : {}) });
    s.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => done(s));
    return s;
  });
  if (!tunnel) return { socket, usesOnread: onread !== undefined };
  await openTunnel(socket, url, proxy, options);
  const host = bareHost(url);
  const secure = await step<net.Socket>(
    options,
    `TLS with ${url.origin} through proxy ${proxy.origin}`,
    (done) => {
      const s = tls.connect({ socket, host, ...serverName(host), ALPNProtocols: ['http/1.1'] });
      s.once('secureConnect', () => done(s));
      return s;
    },
  ).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
  // TLS reads and writes through the tunnel's handle; a fault the tunnel socket still reports ends it.
  socket.on('error', (err) => secure.destroy(err));
  return { socket: secure, usesOnread: false };
}

/** Sends CONNECT and reads the proxy's answer head; a non-200 answer is a one-line error. */
function openTunnel(socket: net.Socket, url: URL, proxy: URL, options: ProxyConnectOptions): Promise<void> {
  const authority = `${bareHost(url).includes(':') ? `[${bareHost(url)}]` : bareHost(url)}:${Number(url.port) || 443}`;
  const auth = proxyAuthorization(proxy);
  return step<net.Socket>(options, `Proxy ${proxy.origin} (CONNECT to ${authority})`, (done, fail) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16 * 1024)
          fail(new TransientError(`Proxy ${proxy.origin}: CONNECT answer head too large`));
        return;
      }
      socket.off('data', onData);
      socket.pause();
      // A proxy sends nothing after its 200 until the client speaks; anything that came is the target's.
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length > 0) socket.unshift(rest);
      const status = /^HTTP\/1\.[01] (\d{3})[^\r\n]*/.exec(head);
      if (status?.[1] === '200') done(socket);
      else {
        const line = status ? status[0].replace(/^HTTP\/1\.[01] /, '') : JSON.stringify(head.slice(0, 40));
        fail(new TransientError(`Proxy ${proxy.origin} refused CONNECT to ${authority}: HTTP ${line}`));
      }
    };
    socket.on('data', onData);
    socket.write(
      `CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n${auth ? `proxy-authorization: ${auth}\r\n` : ''}\r\n`,
    );
    return socket;
  }).then(() => undefined);
}

/**
 * Runs one step of connecting: `start` returns the socket it uses and calls `done` when the step
 * succeeded. Socket errors, the close of the socket, the timeout and an abort reject with a line
 * starting with `what`; on failure the socket is destroyed, on success it is handed over as is.
 */
function step<T>(
  options: ProxyConnectOptions,
  what: string,
  start: (done: (value: T) => void, fail: (err: Error) => void) => net.Socket,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let socket: net.Socket | undefined;
    let settled = false;
    const settle = (err: Error | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      socket?.off('error', onError).off('close', onClose);
      if (err) {
        socket?.destroy();
        reject(err);
      } else resolve(value as T);
    };
    const onError = (err: NodeJS.ErrnoException) =>
      settle(new TransientError(`${what}: ${err.code ?? err.message}`, { cause: err }));
    const onClose = () => settle(new TransientError(`${what}: connection closed`));
    const onAbort = () => settle(options.signal!.reason as Error);
    const timer = setTimeout(
      () => settle(new TransientError(`${what}: no answer within ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    );
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket = start(
      (value) => settle(undefined, value),
      (err) => settle(err),
    );
    socket.on('error', onError).on('close', onClose);
  });
}

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** SNI takes host names only, never addresses. */
function serverName(host: string): { servername?: string } {
  return net.isIP(host) ? {} : { servername: host };
}
