/** Wires the app to its adapters; used by the Lambda entries and by the local cloud alike. */
import { type App, createApp } from './app.ts';
import type { CloudConfig } from './config.ts';
import { DeviceStore } from './device-store.ts';
import { Table } from './dynamo.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { type AwsCredentials, Presigner } from './presign.ts';

export interface CloudParts {
  readonly app: App;
  readonly table: Table;
  readonly store: DeviceStore;
}

export function createCloud(
  config: CloudConfig,
  deps: {
    readonly metrics: (table: Table) => Metrics;
    readonly log: Logger;
    readonly credentials: () => AwsCredentials;
    /** DynamoDB credentials when they differ from the SDK's default chain (local cloud). */
    readonly tableCredentials?: AwsCredentials;
    /** How often unchanged devices rewrite their registry entry. */
    readonly registryRefreshMs?: number;
    /** See DeviceStoreOptions.changeSignal. */
    readonly changeSignal?: () => number;
  },
): CloudParts & { readonly metrics: Metrics } {
  const table = new Table({
    tableName: config.tableName,
    region: config.region,
    ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
    ...(deps.tableCredentials ? { credentials: deps.tableCredentials } : {}),
  });
  const store = new DeviceStore(table, {
    updatesRevalidateMs: config.updatesCacheSeconds * 1000,
    tokenCacheMs: 60_000,
    registryRefreshMs: deps.registryRefreshMs ?? 60 * 60 * 1000,
    ...(deps.changeSignal ? { changeSignal: deps.changeSignal } : {}),
  });
  const presigner = new Presigner(
    {
      region: config.region,
      bucket: config.bucketName,
      ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
      forcePathStyle: config.s3Endpoint !== undefined,
    },
    deps.credentials,
  );
  const metrics = deps.metrics(table);
  const app = createApp({
    store,
    presigner,
    metrics,
    log: deps.log,
    urlExpiresSeconds: config.urlExpiresSeconds,
  });
  return { app, table, store, metrics };
}
