/**
 * Real components for agent tests, reusable by e2e tests against the local cloud:
 * - makeImage: a random image file and its sha256;
 * - startImageServer: a Range-capable static server (206 like S3), optionally throttled, oversized,
 *   ignoring Range, or refusing every request with an S3-style error;
 * - startFaultProxy: an HTTP proxy in front of any image URL (presigned S3 URLs included: it keeps the
 *   path, query and Host) that cuts, corrupts or stalls the body at absolute image offsets;
 * - startFakeCloud: DESIGN §2 checkin/report endpoints answering what a test tells them, recording calls;
 * - writeAgentFiles / writeScript: ioto.json5, device.json5 and apply scripts in a temp dir;
 * - buildAgentBundle / runAgent / spawnAgent: the single-file agent as a real process.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ConfigFiles } from '#agent/config.ts';
import { buildAgent } from '#scripts/bundling.ts';

export interface TestImage {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** Writes `size` random bytes in 1 MiB chunks. */
export function makeImage(path: string, size: number): TestImage {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = randomBytes(Math.min(1 << 20, size - done));
      hash.update(chunk);
      writeSync(fd, chunk);
      done += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  return { path, size, sha256: hash.digest('hex') };
}

/** Deterministic PRNG (mulberry32) so a failing random plan can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface ImageServerOptions {
  /** Throttle the body to about this rate. */
  readonly bytesPerSecond?: number;
  /** Answer 200 with the whole file even to a Range request. */
  readonly ignoreRange?: boolean;
  /** Send the body with chunked transfer encoding, in odd-sized chunks, instead of Content-Length. */
  readonly chunked?: boolean;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: TlsFiles;
  /** Answer every request with this status and body instead of the image (an S3 error, say). */
  readonly refuse?: { readonly status: number; readonly body?: string };
}

/** The body S3 sends with an error status. */
export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>`;
}

export interface TlsFiles {
  readonly key: string;
  readonly cert: string;
}

/** A self-signed certificate for the given addresses (needs the openssl CLI); trust it with NODE_EXTRA_CA_CERTS. */
export function makeCertificate(
  dir: string,
  ips: readonly string[] = ['127.0.0.1'],
): TlsFiles & { readonly certFile: string } {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${ips[0]}`,
      '-addext',
      `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

function createServer(tls: TlsFiles | undefined, handler: http.RequestListener): Server {
  return tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
}

export interface ImageServer {
  /** URL of the image (any path serves it). */
  readonly url: string;
  /** Range header of each request ('' for none). */
  readonly ranges: string[];
  close(): Promise<void>;
}

export async function startImageServer(data: Buffer, options: ImageServerOptions = {}): Promise<ImageServer> {
  const ranges: string[] = [];
  const server = createServer(options.tls, (req, res) => {
    const range = req.headers.range ?? '';
    ranges.push(range);
    if (options.refuse) {
      const body = options.refuse.body ?? '';
      res.writeHead(options.refuse.status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(range);
    let start = 0;
    if (m && !options.ignoreRange) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': data.length - start,
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'accept-ranges': 'bytes',
      });
    } else if (options.chunked) {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
    } else {
      res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
    }
    const body = data.subarray(start);
    if (options.chunked) {
      for (let at = 0; at < body.length; at += 7001) res.write(body.subarray(at, at + 7001));
      res.end();
      return;
    }
    if (!options.bytesPerSecond) {
      res.end(body);
      return;
    }
    const slice = 64 * 1024;
    const pause = (slice / options.bytesPerSecond) * 1000;
    let at = 0;
    const next = () => {
      if (res.destroyed) return;
      if (at >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(at, at + slice));
      at += slice;
      setTimeout(next, pause);
    };
    next();
  });
  const url = `${await listen(server)}/images/demo/image.bin?X-Amz-Signature=test`;
  return { url, ranges, close: () => close(server) };
}

export type Fault =
  /** Close the connection after the byte before `at`. */
  | { readonly kind: 'cut'; readonly at: number }
  /** Flip the bits of the byte at `at`. */
  | { readonly kind: 'corrupt'; readonly at: number }
  /** Stop sending at `at` and hold the connection open. */
  | { readonly kind: 'stall'; readonly at: number };

export interface FaultProxy {
  /** `url` with the origin replaced by the proxy's. */
  rewrite(url: string): string;
  /** Faults not triggered yet. */
  readonly pending: Fault[];
  readonly triggered: Fault[];
  /** Requests forwarded so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * Forwards to the origin of the URLs it rewrites, keeping path, query and Host (so presigned S3
 * signatures stay valid), and applies each fault once, at the absolute image offset it names
 * (taken from Content-Range for 206 answers).
 */
export async function startFaultProxy(upstream: string, faults: readonly Fault[]): Promise<FaultProxy> {
  const origin = new URL(upstream);
  const pending = [...faults].sort((a, b) => a.at - b.at);
  const triggered: Fault[] = [];
  let requests = 0;
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const upstreamReq = http.request(
      new URL(req.url ?? '/', origin),
      { method: req.method, headers: { ...req.headers, host: origin.host } },
      (up) => {
        const cr = /^bytes (\d+)-/.exec(String(up.headers['content-range'] ?? ''));
        let pos = cr ? Number(cr[1]) : 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        res.on('close', () => up.destroy());
        up.on('data', (chunk: Buffer) => {
          let out = chunk;
          const end = pos + chunk.length;
          // Faults at offsets this request skipped (the client resumed past them) are dropped.
          while (pending.length > 0 && pending[0]!.at < pos) pending.shift();
          while (pending.length > 0 && pending[0]!.at < end) {
            const fault = pending.shift()!;
            triggered.push(fault);
            const cut = fault.at - pos;
            if (fault.kind === 'corrupt') {
              if (out === chunk) out = Buffer.from(chunk);
              out[cut] = out[cut]! ^ 0xff;
              continue;
            }
            up.destroy();
            if (fault.kind === 'cut') {
              res.write(out.subarray(0, cut), () => res.socket?.destroy());
            } else {
              res.write(out.subarray(0, cut));
            }
            return;
          }
          pos = end;
          if (!res.write(out)) {
            up.pause();
            res.once('drain', () => up.resume());
          }
        });
        up.on('end', () => res.end());
      },
    );
    upstreamReq.on('error', () => res.destroy());
    req.pipe(upstreamReq);
  });
  const base = await listen(server);
  return {
    rewrite: (url) => {
      const u = new URL(url);
      return `${base}${u.pathname}${u.search}`;
    },
    pending,
    triggered,
    get requests() {
      return requests;
    },
    close: () => close(server),
  };
}

export interface CloudAnswer {
  readonly status?: number;
  /** Objects are sent as compact JSON, strings as one line of text. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface CloudCall {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown>;
}

export interface FakeCloud {
  readonly api: string;
  readonly checkins: CloudCall[];
  readonly reports: CloudCall[];
  /** What the next checkins get; the default is `{}` (no update). */
  onCheckin: (body: Record<string, unknown>) => CloudAnswer;
  onReport: (body: Record<string, unknown>) => CloudAnswer;
  close(): Promise<void>;
}

/** DESIGN §2 endpoints with scripted answers. */
export async function startFakeCloud(tls?: TlsFiles): Promise<FakeCloud> {
  const cloud: FakeCloud = {
    api: '',
    checkins: [],
    reports: [],
    onCheckin: () => ({ body: {} }),
    onReport: () => ({ body: {} }),
    close: async () => {},
  };
  const server = createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      const call = { path: req.url ?? '', authorization: req.headers.authorization, body };
      let answer: CloudAnswer;
      if (req.url === '/tok/provision/update') {
        cloud.checkins.push(call);
        answer = cloud.onCheckin(body);
      } else if (req.url === '/tok/provision/updateReport') {
        cloud.reports.push(call);
        answer = cloud.onReport(body);
      } else {
        answer = { status: 404, body: 'Not found' };
      }
      const text = typeof answer.body === 'string' ? `${answer.body}\n` : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status ?? 200, {
        'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json',
        'content-length': Buffer.byteLength(text),
        ...answer.headers,
      });
      res.end(text);
    });
  });
  const api = await listen(server);
  return Object.assign(cloud, { api, close: () => close(server) });
}

export interface OfferFields {
  readonly url: string;
  readonly image: TestImage;
  readonly update?: string;
  readonly version?: string;
  readonly signature?: string;
}

/** A DESIGN §2 "update available" answer body. */
export function offer(o: OfferFields): Record<string, unknown> {
  return {
    url: o.url,
    checksum: o.image.sha256,
    update: o.update ?? 'upd-1',
    version: o.version ?? '1.1.0',
    size: o.image.size,
    ...(o.signature ? { signature: o.signature } : {}),
  };
}

export interface AgentFilesOptions {
  readonly api: string;
  readonly version?: string;
  readonly token?: string;
  /** Absolute path of the update script. */
  readonly script?: string;
  readonly keys?: readonly string[];
  readonly period?: string;
  readonly applyTimeout?: string;
  readonly stallTimeout?: string;
  readonly device?: Readonly<Record<string, unknown>>;
}

/** Writes `<dir>/config/ioto.json5` and `<dir>/config/device.json5`. */
export function writeAgentFiles(dir: string, o: AgentFilesOptions): ConfigFiles {
  const config = join(dir, 'config');
  mkdirSync(config, { recursive: true });
  const ioto = join(config, 'ioto.json5');
  const device = join(config, 'device.json5');
  const update: Record<string, unknown> = {
    enable: true,
    api: o.api,
    token: o.token ?? 'test-token',
    period: o.period ?? '24 hrs',
    applyTimeout: o.applyTimeout ?? '20 secs',
    stallTimeout: o.stallTimeout ?? '5 secs',
    ...(o.keys ? { keys: o.keys } : {}),
  };
  const body = {
    version: o.version ?? '1.0.0',
    services: { update: true },
    update,
    scripts: o.script ? { update: o.script } : {},
  };
  // JSON5 layout with the version on its own line, as scripts/update expects of a hand-written file.
  writeFileSync(ioto, `// test config\n${JSON.stringify(body, null, 2)}\n`);
  writeFileSync(device, JSON.stringify({ id: 'dev-1', product: 'demo', region: 'eu', ...o.device }, null, 2));
  return { ioto, device };
}

/** `updraft-agent` arguments for one cycle on `files`, keeping its state in `stateDir`. */
export function onceArgs(files: ConfigFiles, stateDir: string): string[] {
  return ['--once', '--config', files.ioto, '--device', files.device, '--state', stateDir];
}

/** A /bin/sh script in `dir`, executable. */
export function writeScript(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Builds dist-style single-file agent into `dir`. */
export function buildAgentBundle(dir: string): Promise<string> {
  return buildAgent(join(dir, 'updraft-agent.mjs'));
}

export interface AgentRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function spawnAgent(
  bundle: string,
  args: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string>> },
): ChildProcess {
  return spawn(process.execPath, [bundle, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function waitForExit(child: ChildProcess, timeoutMs = 20_000): Promise<AgentRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function runAgent(
  bundle: string,
  args: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string>>; timeoutMs?: number },
): Promise<AgentRun> {
  return waitForExit(spawnAgent(bundle, args, options), options.timeoutMs);
}

/** Whether `pid` runs (a zombie, dead but not yet reaped, does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** A TCP port on 127.0.0.1 with nothing listening: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export { until } from '#test/support/wait.ts';
