/** Helpers of the CLI e2e tests: run the real `updraft` binary, and proxies that fail on purpose. */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/updraft.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node bin/updraft.js ...args` from the repository root. */
export function runUpdraft(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

/**
 * `updraft` against the local cloud in `dataDir()` (read at each call: tests start their cloud in
 * beforeAll), and `updraftJson`, which checks the run was clean and parses its --json output.
 */
export function updraftOnLocalCloud(dataDir: () => string) {
  const updraft = (...args: string[]) => runUpdraft(args, { UPDRAFT_DATA: dataDir() });
  async function updraftJson<T>(...args: string[]): Promise<T> {
    const result = await updraft(...args, '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as T;
  }
  return { updraft, updraftJson };
}

/** The lines of stderr, without the trailing newline. */
export function errorLines(result: CliResult): string[] {
  return result.stderr.replace(/\n$/, '').split('\n');
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A TCP proxy to `target` that, once `limit` bytes went upstream, resets every connection and stops
 * listening: the service becomes unreachable in the middle of a transfer.
 */
export async function dyingProxy(target: string, limit: number) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let sent = 0;
  let dead = false;
  const server = createServer((client) => {
    if (dead) return client.destroy();
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (sent > limit) kill();
      else upstream.write(chunk);
    });
    upstream.pipe(client);
    for (const s of [client, upstream]) s.on('error', () => undefined).on('close', () => sockets.delete(s));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  function kill() {
    if (dead) return;
    dead = true;
    server.close();
    for (const s of sockets) s.resetAndDestroy();
  }
  const url = await listen(server);
  return {
    url,
    get killed() {
      return dead;
    },
    close: () => {
      kill();
    },
  };
}

/**
 * An HTTP proxy to a DynamoDB endpoint that resets the connection of every request `drop` selects
 * (by its X-Amz-Target operation and JSON body) and forwards the rest.
 */
export async function filteringDynamoProxy(
  target: string,
  drop: (operation: string, body: string) => boolean,
) {
  let dropped = 0;
  const server = createHttpServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation =
        String(req.headers['x-amz-target'] ?? '')
          .split('.')
          .pop() ?? '';
      if (drop(operation, body.toString('utf8'))) {
        dropped++;
        req.socket.resetAndDestroy();
        return;
      }
      const upstream = request(
        `${target}${req.url ?? '/'}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  const url = await listen(server);
  return {
    url,
    get dropped() {
      return dropped;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
