/**
 * Real network parts for the agent's proxy and redirect tests:
 * - startTestProxy: a forward proxy on 127.0.0.1 (plain or TLS) that opens CONNECT tunnels and
 *   forwards absolute-URI requests, recording each with the Proxy-Authorization it carried, or
 *   refuses CONNECT with a given status;
 * - startRedirector: a chain of redirects (301, 302, 303, 307, 308 in turn) ending at a target URL,
 *   recording the path and Range header of each request.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TlsFiles } from './agent-fixtures.ts';

export interface ProxyVisit {
  /** `CONNECT host:port`, or the method and absolute URI of a forwarded request. */
  readonly request: string;
  readonly authorization: string | undefined;
}

export interface TestProxy {
  /** e.g. http://127.0.0.1:PORT (no credentials). */
  readonly url: string;
  readonly visits: ProxyVisit[];
  /** Set to answer every CONNECT with this status line instead of a tunnel. */
  refuse: string | undefined;
  close(): Promise<void>;
}

async function listen(server: Server, scheme: string): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes the server and every socket it handed out, tunnels included (closeAllConnections misses those). */
function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return async () => {
    for (const socket of sockets) socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

export async function startTestProxy(tls?: TlsFiles): Promise<TestProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    return socket;
  };
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    proxy.visits.push({
      request: `${req.method} ${req.url}`,
      authorization: req.headers['proxy-authorization'],
    });
    const target = new URL(req.url ?? '');
    const { 'proxy-authorization': _credentials, ...headers } = req.headers;
    const upstream = http.request(target, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = tls
    ? https.createServer({ key: tls.key, cert: tls.cert }, forward)
    : http.createServer(forward);
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    proxy.visits.push({ request: `CONNECT ${req.url}`, authorization: req.headers['proxy-authorization'] });
    if (proxy.refuse) {
      client.end(`HTTP/1.1 ${proxy.refuse}\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    const authority = /^(.*):(\d+)$/.exec(req.url ?? '');
    // "localhost" goes to 127.0.0.1, where the test servers listen (never ::1).
    const host = authority?.[1] === 'localhost' ? '127.0.0.1' : (authority?.[1] ?? '');
    const upstream = track(
      net.connect(Number(authority?.[2]), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      }),
    );
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  const proxy: TestProxy = {
    url: await listen(server, tls ? 'https' : 'http'),
    visits: [],
    refuse: undefined,
    close: closer(server, sockets),
  };
  return proxy;
}

export interface Redirector {
  /** The start of a chain of `hops` redirects to the target. */
  chain(hops: number): string;
  /** Path and Range header of each request, in order. */
  readonly requests: { readonly path: string; readonly range: string }[];
  close(): Promise<void>;
}

const STATUSES = [301, 302, 303, 307, 308];

export async function startRedirector(target: string, tls?: TlsFiles): Promise<Redirector> {
  const requests: { path: string; range: string }[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ path: req.url ?? '', range: req.headers.range ?? '' });
    const left = Number(/^\/hop\/(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    // Relative Locations inside the chain, the absolute target at its end.
    const location = left > 1 ? `/hop/${left - 1}?X-Amz-Signature=s${left}` : target;
    res.writeHead(STATUSES[left % STATUSES.length]!, { location, 'content-length': 9 }).end('redirect\n');
  };
  const server = tls
    ? https.createServer({ key: tls.key, cert: tls.cert }, handler)
    : http.createServer(handler);
  const base = await listen(server, tls ? 'https' : 'http');
  return {
    chain: (hops) => `${base}/hop/${hops}?X-Amz-Signature=start`,
    requests,
    close: closer(server, new Set()),
  };
}
