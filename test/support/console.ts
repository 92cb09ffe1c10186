/** Test helpers: the web console served for a test cloud, and raw HTTP calls with full header control. */
import { request } from 'node:http';
import { join } from 'node:path';
import { openCloud } from '#cli/cloud.ts';
import { type RunningConsole, startConsole } from '#console/index.ts';
import type { TestCloud } from './cloud.ts';

export const CONSOLE_SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';
const quiet = { info() {}, warn() {}, error() {} };

export interface TestConsole extends RunningConsole {
  /** The cookie the secret is exchanged for. */
  readonly cookie: string;
  readonly host: string;
}

/**
 * Serves the console for the test cloud on a free loopback port, and for the deployed clouds named
 * in `others` (stand-ins: see stand-in-clouds.ts; the SDK's endpoint variables must be set);
 * stop() also closes the clouds' clients.
 */
export async function startTestConsole(
  cloud: TestCloud,
  others: { readonly names: readonly string[]; readonly outputsFile: string } = {
    names: [],
    outputsFile: '',
  },
): Promise<TestConsole> {
  const sources = {
    dataDir: cloud.dataDir,
    outputsFile: others.outputsFile || join(cloud.dataDir, 'none.json'),
  };
  const targets = ['local', ...others.names].map((name) => openCloud(name, sources));
  const running = await startConsole({
    clouds: targets,
    defaultProduct: 'demo',
    port: 0,
    secret: CONSOLE_SECRET,
    log: quiet,
  });
  return {
    ...running,
    cookie: `updraft-console-${running.port}=${CONSOLE_SECRET}`,
    host: `127.0.0.1:${running.port}`,
    stop: async () => {
      await running.stop();
      for (const target of targets) target.close();
    },
  };
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** One HTTP request with exactly the headers given (fetch would set Host and Origin itself). */
export function rawRequest(
  origin: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers field by field
export type AnyJson = any;

/**
 * A request as the console's own page makes it (right Host, the cookie, Origin on mutations, a
 * JSON body); `options.headers` override any of them. The answer carries its parsed JSON.
 */
export async function callConsole(
  web: TestConsole,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<RawAnswer & { json: AnyJson }> {
  const headers: Record<string, string> = { host: web.host, cookie: web.cookie };
  if (method !== 'GET') headers.origin = web.origin;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const answer = await rawRequest(web.origin, method, path, { ...headers, ...options.headers }, body);
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {}
  return { ...answer, json };
}
