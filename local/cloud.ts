/**
 * The embedded local device cloud behind `npm start`: dynalite (LevelDB under <data>/dynamodb)
 * and s3rver (files under <data>/s3) in this process, sealed (local/sealed-store.ts), and the same
 * app the Lambda entries serve, on a node:http(s) server. Writes <data>/cloud.json for the CLI.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener, Server } from 'node:http';
import { join, resolve } from 'node:path';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import type { App } from '#functions/app.ts';
import { createCloud } from '#functions/cloud.ts';
import type { DeviceStore } from '#functions/device-store.ts';
import type { Table } from '#functions/dynamo.ts';
import { recoverIntents } from '#functions/embedded-transact.ts';
import { jsonLogger, type Logger } from '#functions/log.ts';
import { TableMetrics } from '#functions/metrics.ts';
import { createToken } from '#functions/tokens.ts';
import {
  acquireLock,
  type LocalCloudFile,
  localChangeSignal,
  localCredentials,
  secureDataDir,
  writeCloudFile,
} from './cloud-file.ts';
import {
  createListener,
  DropLog,
  guardListener,
  type ListenerLimits,
  limitServer,
  listen,
  nodeHandler,
  urlOf,
} from './http-server.ts';
import { sealDynamo, sealS3, sealServer } from './sealed-store.ts';
import { type LocalCredentials, SignatureVerifier } from './sigv4-verify.ts';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_TABLE = 'updraft';
export const LOCAL_BUCKET = 'updraft-images';
/**
 * Authenticated S3 requests (the CLI's uploads) may stream a large part: their body may take this
 * long. Unauthenticated ones are refused as soon as their headers are in.
 */
const S3_REQUEST_TIMEOUT_MS = 120_000;
/** A device on a slow link still moves a byte every few seconds; a download nobody reads does not. */
const S3_IDLE_TIMEOUT_MS = 30_000;
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
  /** Limits of each listener (API, images, and the embedded DynamoDB's); defaults in local/http-server.ts. */
  readonly limits?: ListenerLimits;
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

type Cleanups = (() => Promise<void> | void)[];

function closeServer(server: Server): Promise<void> {
  server.closeIdleConnections?.();
  return new Promise<void>((r) => server.close(() => r()));
}

/** dynalite on loopback behind the seal; the CLI reaches it with the local credentials. */
async function startDynamo(
  options: LocalCloudOptions,
  dataDir: string,
  credentials: LocalCredentials,
  log: Logger,
  cleanups: Cleanups,
): Promise<string> {
  const dynamo = dynalite({
    path: join(dataDir, 'dynamodb'),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  sealServer(dynamo, (handler) =>
    sealDynamo(handler, new SignatureVerifier(credentials, LOCAL_REGION, 'dynamodb')),
  );
  // Loopback only, but any local user can open sockets to it, in this process's fd table.
  limitServer(dynamo, options.limits ?? {});
  const drops = new DropLog('dynamodb', log);
  guardListener(dynamo, drops);
  await listen(dynamo, options.dynamoPort ?? 0, '127.0.0.1', 'DynamoDB');
  cleanups.push(() => {
    drops.flush();
    return new Promise<void>((r) => dynamo.close(() => r()));
  });
  return urlOf(dynamo, false, '127.0.0.1');
}

/**
 * s3rver's app on a listener of ours (sealed, guarded); parts of uploads a killed `publish` left
 * behind are removed first (AWS has a lifecycle rule for that).
 */
async function startS3(
  options: LocalCloudOptions,
  dataDir: string,
  credentials: LocalCredentials,
  log: Logger,
  cleanups: Cleanups,
): Promise<{ url: string; publicUrl: string }> {
  const s3 = new S3rver({
    silent: true,
    directory: join(dataDir, 's3'),
    configureBuckets: [{ name: LOCAL_BUCKET }],
    vhostBuckets: false,
  });
  cleanups.push(() => {
    s3.logger.exceptions.unhandle();
    s3.logger.close();
  });
  await s3.configureBuckets();
  const incomplete = s3.store.getResourcePath(LOCAL_BUCKET, undefined, 'uploads');
  rmSync(incomplete, { recursive: true, force: true });

  const host = options.s3Host ?? '127.0.0.1';
  const verifier = new SignatureVerifier(credentials, LOCAL_REGION, 's3');
  // Presigned URLs are signed for the public address; clients may send another Host (the EmbedThis
  // C updater drops the port), so that one is tried besides the request's own. Filled in once listening.
  const publicHosts: string[] = [];
  const handler = s3.callback() as RequestListener;
  const server = createListener(sealS3(handler, verifier, publicHosts), options.tls, {
    requestTimeoutMs: S3_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: S3_IDLE_TIMEOUT_MS,
    ...options.limits,
  });
  const drops = new DropLog('images', log);
  guardListener(server, drops);
  await listen(server, options.s3Port ?? 4569, host, 'S3');
  cleanups.push(async () => {
    drops.flush();
    await closeServer(server);
  });
  const url = urlOf(server, options.tls !== undefined, host);
  const publicUrl = options.s3PublicUrl?.replace(/\/+$/, '') ?? url;
  publicHosts.push(new URL(publicUrl).host);
  return { url, publicUrl };
}

/** The device API on its guarded listener; answers its public URL. */
async function startApi(
  options: LocalCloudOptions,
  app: App,
  log: Logger,
  cleanups: Cleanups,
): Promise<string> {
  const host = options.host ?? '127.0.0.1';
  const drops = new DropLog('api', log);
  const server = createListener(nodeHandler(app, log, drops), options.tls, options.limits ?? {});
  server.keepAliveTimeout = 65_000;
  guardListener(server, drops);
  await listen(server, options.port ?? 4000, host, 'API');
  cleanups.push(async () => {
    drops.flush();
    await closeServer(server);
  });
  return options.publicUrl?.replace(/\/+$/, '') ?? urlOf(server, options.tls !== undefined, host);
}

async function devTokenOf(dataDir: string, table: Table): Promise<string> {
  const devTokenFile = join(dataDir, 'dev-token');
  try {
    return readFileSync(devTokenFile, 'utf8').trim();
  } catch {
    const { token } = await createToken(table, { product: DEV_PRODUCT, description: 'development token' });
    writeFileSync(devTokenFile, `${token}\n`, { mode: 0o600 });
    return token;
  }
}

export async function startLocalCloud(options: LocalCloudOptions): Promise<LocalCloud> {
  const dataDir = resolve(options.dataDir);
  const log = options.log ?? jsonLogger('updraft-local');
  secureDataDir(dataDir);
  const releaseLock = acquireLock(dataDir);
  const cleanups: Cleanups = [releaseLock];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const credentials = localCredentials(dataDir);
    const dynamoEndpoint = await startDynamo(options, dataDir, credentials, log, cleanups);
    const s3 = await startS3(options, dataDir, credentials, log, cleanups);
    const cloud = createCloud(
      {
        tableName: LOCAL_TABLE,
        bucketName: LOCAL_BUCKET,
        region: LOCAL_REGION,
        dynamoEndpoint,
        s3Endpoint: s3.publicUrl,
        urlExpiresSeconds: 3600,
        updatesCacheSeconds: (options.updatesRevalidateMs ?? 30_000) / 1000,
      },
      {
        metrics: (table) => new TableMetrics(table),
        log,
        credentials: () => credentials,
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
    const devToken = await devTokenOf(dataDir, cloud.table);

    const apiUrl = await startApi(options, cloud.app, log, cleanups);

    const file: LocalCloudFile = {
      name: 'local',
      apiUrl,
      s3Endpoint: s3.url,
      s3PublicUrl: s3.publicUrl,
      dynamoEndpoint,
      region: LOCAL_REGION,
      tableName: LOCAL_TABLE,
      bucketName: LOCAL_BUCKET,
      credentials,
      pid: process.pid,
      ...(options.tls?.certFile ? { caFile: resolve(options.tls.certFile) } : {}),
    };
    writeCloudFile(dataDir, file);
    cleanups.push(() => rmSync(join(dataDir, 'cloud.json'), { force: true }));
    return {
      apiUrl,
      s3Url: s3.publicUrl,
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
