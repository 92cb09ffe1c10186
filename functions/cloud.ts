/** Wires the app to its adapters; used by the Lambda entries and by the local cloud alike. */
import { type App, createApp } from './app.ts';
import { CACHE_LIFETIMES, type CloudConfig } from './config.ts';
import { conflictReporter } from './conflicts.ts';
import { DeviceStore } from './device-store.ts';
import { Table, type TableClient } from './dynamo.ts';
import type { Logger } from './log.ts';
import { type Metrics, SeriesMetrics } from './metrics.ts';
import { Presigner } from './presign.ts';
import type { AwsCredentials } from './sigv4.ts';

export interface CloudParts {
  readonly app: App;
  readonly table: Table;
  readonly store: DeviceStore;
  readonly metrics: Metrics;
  /**
   * Writes what the app summed in memory: metrics and deferral counts (and, locally, buffered
   * registry entries). Lambda calls it after each invocation, the local cloud on a timer.
   */
  flush(): Promise<void>;
}

export function createCloud(
  config: CloudConfig,
  deps: {
    readonly metrics: (table: Table) => Metrics;
    readonly log: Logger;
    /** Signs presigned URLs and, unless tableCredentials says otherwise, DynamoDB requests. */
    readonly credentials: () => AwsCredentials;
    /** DynamoDB credentials when they differ from `credentials`. */
    readonly tableCredentials?: AwsCredentials;
    /** How often unchanged devices rewrite their registry entry. */
    readonly registryRefreshMs?: number;
    /** See CatalogOptions.changeSignal. */
    readonly changeSignal?: () => number;
    /** See RegistryOptions.batchMs. */
    readonly registryBatchMs?: number;
    /** See DeviceStoreOptions.counterBatchMs and SeriesOptions.batchMs (default 0: every flush). */
    readonly counterBatchMs?: number;
    /** Sends the table's requests instead of a client of its own (the load simulation counts them). */
    readonly tableClient?: TableClient;
    /** The app's clock (the load simulation runs a simulated one); default Date.now. */
    readonly now?: () => number;
  },
): CloudParts {
  const table = new Table({
    tableName: config.tableName,
    region: config.region,
    ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
    credentials: deps.tableCredentials ?? deps.credentials,
    ...(deps.tableClient ? { client: deps.tableClient } : {}),
  });
  const now = deps.now ?? Date.now;
  const counterBatchMs = deps.counterBatchMs ?? 0;
  const metrics = new SeriesMetrics(deps.metrics(table), table, { batchMs: counterBatchMs, now });
  const store = new DeviceStore(table, {
    updatesRevalidateMs: config.updatesCacheSeconds * 1000,
    updatesFullReloadMs: CACHE_LIFETIMES.updatesFullReloadMs,
    tokenCacheMs: CACHE_LIFETIMES.tokenMs,
    registryRefreshMs: deps.registryRefreshMs ?? CACHE_LIFETIMES.registryRefreshMs,
    counterBatchMs,
    metrics,
    conflicts: conflictReporter(deps.log, metrics, now),
    now,
    ...(deps.changeSignal ? { changeSignal: deps.changeSignal } : {}),
    ...(deps.registryBatchMs !== undefined ? { registryBatchMs: deps.registryBatchMs } : {}),
  });
  const presigner =
    config.bucketName === undefined
      ? undefined
      : new Presigner(
          {
            region: config.region,
            bucket: config.bucketName,
            ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
            forcePathStyle: config.s3Endpoint !== undefined,
          },
          deps.credentials,
        );
  const app = createApp({
    store,
    presigner,
    metrics,
    log: deps.log,
    urlExpiresSeconds: config.urlExpiresSeconds,
    now,
  });
  const flush = async () => {
    const results = await Promise.allSettled([metrics.flush(), store.flush()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  };
  return { app, table, store, metrics, flush };
}
