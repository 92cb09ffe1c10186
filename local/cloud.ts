/**
 * The embedded local device cloud behind `npm start`: dynalite (LevelDB under <data>/dynamodb)
 * and s3rver (files under <data>/s3) in this process, and the same app the Lambda entries serve,
 * on a node:http(s) server. Writes <data>/cloud.json for the CLI.
 */
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { MAX_BODY_BYTES } from '#core/device.ts';
import type { App } from '#functions/app.ts';
import { createCloud } from '#functions/cloud.ts';
import type { DeviceStore } from '#functions/device-store.ts';
import type { Table } from '#functions/dynamo.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { jsonLogger, type Logger } from '#functions/log.ts';
import { TableMetrics } from '#functions/metrics.ts';
import { createToken } from '#functions/tokens.ts';
import { acquireLock, type LocalCloudFile, localChangeSignal, writeCloudFile } from './cloud-file.ts';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_TABLE = 'updraft';
export const LOCAL_BUCKET = 'updraft-images';
/** s3rver ignores signatures but our presigner and the CLI still sign with these. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const DEV_PRODUCT = 'demo';

export interface LocalCloudOptions {
  readonly dataDir: string;
  readonly host?: string;
  readonly port?: number;
  readonly s3Host?: string;
  readonly s3Port?: number;
  /** Loopback port of the embedded DynamoDB (0: any free port). */
  readonly dynamoPort?: number;
  /** PEM certificate and key: serve the API and S3 over HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly certFile?: string };
  /** Address devices use for the API, when it differs from host:port (proxy). */
  readonly publicUrl?: string;
  /** Address written into presigned image URLs, when it differs from s3Host:s3Port. */
  readonly s3PublicUrl?: string;
  /**
   * How often the update list is revalidated against the product stamp (default 30 s). Changes
   * made with the CLI are seen at once through the <data>/changes signal.
   */
  readonly updatesRevalidateMs?: number;
  readonly log?: Logger;
}

export interface LocalCloud {
  readonly apiUrl: string;
  readonly s3Url: string;
  readonly file: LocalCloudFile;
  /** The development token for product `demo`, created on first run. */
  readonly devToken: string;
  readonly table: Table;
  readonly store: DeviceStore;
  readonly app: App;
  /** Writes what is summed in memory (metrics, deferrals, registry) now instead of on the next tick. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function urlOf(server: Server, tls: boolean, host: string): string {
  const { port } = server.address() as AddressInfo;
  const name = host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${name}:${port}`;
}

async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
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

/** Creates the table (the layout of functions/keys.ts) unless it exists, and waits until it is active. */
export async function ensureTable(table: Pick<Table, 'client' | 'name'>): Promise<void> {
  try {
    await table.client.send('CreateTable', {
      TableName: table.name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
  } catch (err) {
    if (!(err instanceof Error && err.name === 'ResourceInUseException')) throw err;
  }
  for (;;) {
    const out = await table.client.send<{ Table?: { TableStatus?: string } }>('DescribeTable', {
      TableName: table.name,
    });
    if (out.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 20));
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
export function nodeHandler(app: App, log: Logger) {
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
        log.error('request failed', { error: err });
        if (!res.headersSent) send(500, { 'content-type': 'text/plain; charset=utf-8' }, 'Internal error\n');
        else res.destroy();
      });
  };
}

export async function startLocalCloud(options: LocalCloudOptions): Promise<LocalCloud> {
  const dataDir = resolve(options.dataDir);
  const log = options.log ?? jsonLogger('updraft-local');
  const host = options.host ?? '127.0.0.1';
  const s3Host = options.s3Host ?? '127.0.0.1';
  mkdirSync(join(dataDir, 's3'), { recursive: true });
  const releaseLock = acquireLock(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [releaseLock];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const dynamo = dynalite({
      path: join(dataDir, 'dynamodb'),
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
    });
    await listen(dynamo, options.dynamoPort ?? 0, '127.0.0.1', 'DynamoDB');
    cleanups.push(() => new Promise<void>((r) => dynamo.close(() => r())));
    const dynamoEndpoint = urlOf(dynamo, false, '127.0.0.1');

    const s3 = new S3rver({
      address: s3Host,
      port: options.s3Port ?? 4569,
      silent: true,
      directory: join(dataDir, 's3'),
      configureBuckets: [{ name: LOCAL_BUCKET }],
      vhostBuckets: false,
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
    });
    try {
      await s3.run();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new Error(
          `S3 port ${s3Host}:${options.s3Port ?? 4569} is in use: stop what uses it or pass --s3-port`,
        );
      throw err;
    }
    cleanups.push(() => s3.close());
    const s3Url = urlOf(s3.httpServer!, options.tls !== undefined, s3Host);
    const s3PublicUrl = options.s3PublicUrl?.replace(/\/+$/, '') ?? s3Url;

    const cloud = createCloud(
      {
        tableName: LOCAL_TABLE,
        bucketName: LOCAL_BUCKET,
        region: LOCAL_REGION,
        dynamoEndpoint,
        s3Endpoint: s3PublicUrl,
        urlExpiresSeconds: 3600,
        updatesCacheSeconds: (options.updatesRevalidateMs ?? 30_000) / 1000,
      },
      {
        metrics: (table) => new TableMetrics(table),
        log,
        credentials: () => LOCAL_CREDENTIALS,
        changeSignal: localChangeSignal(dataDir),
        registryBatchMs: 1000,
      },
    );
    await ensureTable(cloud.table);
    // Transactions a kill cut off are finished or undone before anything is served.
    await recoverIntents(cloud.table);
    const flush = () => cloud.flush().catch((err: unknown) => log.warn('flush failed', { error: err }));
    const timer = setInterval(flush, 1000);
    timer.unref();
    cleanups.push(async () => {
      clearInterval(timer);
      await flush();
      cloud.store.close();
    });

    const devTokenFile = join(dataDir, 'dev-token');
    let devToken: string;
    try {
      devToken = readFileSync(devTokenFile, 'utf8').trim();
    } catch {
      devToken = (await createToken(cloud.table, { product: DEV_PRODUCT, description: 'development token' }))
        .token;
      writeFileSync(devTokenFile, `${devToken}\n`, { mode: 0o600 });
    }

    const handler = nodeHandler(cloud.app, log);
    const server = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
      : createServer(handler);
    server.keepAliveTimeout = 65_000;
    await listen(server, options.port ?? 4000, host, 'API');
    cleanups.push(async () => {
      server.closeIdleConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const apiUrl = options.publicUrl?.replace(/\/+$/, '') ?? urlOf(server, options.tls !== undefined, host);

    const file: LocalCloudFile = {
      name: 'local',
      apiUrl,
      s3Endpoint: s3Url,
      s3PublicUrl,
      dynamoEndpoint,
      region: LOCAL_REGION,
      tableName: LOCAL_TABLE,
      bucketName: LOCAL_BUCKET,
      credentials: LOCAL_CREDENTIALS,
      pid: process.pid,
      ...(options.tls?.certFile ? { caFile: resolve(options.tls.certFile) } : {}),
    };
    writeCloudFile(dataDir, file);
    cleanups.push(() => rmSync(join(dataDir, 'cloud.json'), { force: true }));
    return {
      apiUrl,
      s3Url: s3PublicUrl,
      file,
      devToken,
      table: cloud.table,
      store: cloud.store,
      app: cloud.app,
      flush: cloud.flush,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
