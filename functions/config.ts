/** The device cloud's configuration, read once per cold start. Missing values throw; nothing is defaulted silently. */

export interface CloudConfig {
  readonly tableName: string;
  /** Image bucket; only the checkin function presigns, so the report function has none. */
  readonly bucketName?: string;
  readonly region: string;
  /** Custom DynamoDB endpoint (dynalite); unset in AWS. */
  readonly dynamoEndpoint?: string;
  /** Custom S3 endpoint written into presigned URLs (s3rver); unset in AWS. */
  readonly s3Endpoint?: string;
  /** Seconds a presigned URL is valid (≤ 3600). */
  readonly urlExpiresSeconds: number;
  /** How long a container serves a product's update list before revalidating (DESIGN §4.1: ≤ 30 s). */
  readonly updatesCacheSeconds: number;
}

/**
 * How long each container serves from memory. The update list's revalidation (≤ 30 s, DESIGN §4.1)
 * is `updatesCacheSeconds` above, from the environment; these are fixed.
 */
export const CACHE_LIFETIMES = {
  /** A token lookup, found or not: a new or revoked token counts within this. */
  tokenMs: 60 * 1000,
  /** A product's update list is reloaded at least this often, even when its stamp did not move. */
  updatesFullReloadMs: 5 * 60 * 1000,
  /** An unchanged device's registry entry is rewritten at most this often. */
  registryRefreshMs: 60 * 60 * 1000,
  /** A presigned URL is reused while at least this much of its validity remains (DESIGN §4.5). */
  urlMinRemainingMs: 45 * 60 * 1000,
} as const;

/**
 * Fleet aggregates (DESIGN §10, functions/aggregates.ts). Counters many devices touch are split
 * over shards summed on read.
 *
 * `deviceShards`, the device count items: a day's item (`Y#<day>#<shard>`, written in a
 * transaction with the registry entry on a daily device's first checkin of the day, i.e. nearly
 * every checkin) and the version item (`D#<shard>`, also when a device changes version): at 100M
 * daily devices (~1,160 transactions/s) each of 64 takes ~18 writes/s, far under the ~300/s we
 * allow one item. What sets the number is conflicts: DynamoDB cancels a transaction that meets
 * another one on its shard. With ~10 ms in flight, a try conflicts with probability
 * ~1 - e^(-18 × 0.01) ≈ 16% (32 shards: ~30%), and after CONFLICT_ATTEMPTS (5) tries with jittered
 * backoff ~1e-4 of entries are left for the next checkin (32 shards: ~2e-3, 240,000 devices a
 * day). Each cancelled try may cost write units too. Reading sums every shard: 64 small version
 * items plus 64 day items (~0.1 KB) per day shown, a few Query pages for `stats` and the console,
 * whatever the fleet size; 128 shards would halve conflicts again but double those reads, for
 * little gain after retries. Changing the number keeps sums exact (every shard item is summed; a
 * move's -1 and +1 share an item).
 *
 * `shards`, the hourly series items: plain ADDs (no transaction, no conflicts) written once per
 * container per `lambdaCounterBatchMs` to a random shard.
 */
export const AGGREGATES = {
  deviceShards: 64,
  shards: 32,
  /** Hourly series items and per-day seen counts are kept this long (the items' `expires`). */
  retentionDays: 90,
  /**
   * In Lambda, summed counters (hourly series, deferrals) are written when their oldest count is
   * this old, not after every invocation: one write per container per 10 s instead of one per
   * checkin. Counts still in memory when a container is reclaimed are lost (the EMF metrics keep them).
   */
  lambdaCounterBatchMs: 10 * 1000,
} as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new ConfigError(`Missing environment variable ${name}`);
  return value;
}

function numberEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`Invalid ${name}: use a whole number ${min}–${max}`);
  return n;
}

/**
 * The environment names the functions read. The functions own them; the CDK construct that sets
 * them (infra/function.ts) and the local cloud import them from here. No imports in this file: it is
 * bundled into the Lambda functions and loaded by the CDK app alike.
 */
export const ENV = {
  /** DynamoDB table holding updates, devices, tokens and counters (DESIGN §5). Set by bindTable(). */
  table: 'TABLE_NAME',
  /** S3 bucket holding the update images under `images/` (DESIGN §5). Set by bindImages(). */
  bucket: 'BUCKET_NAME',
  urlExpires: 'URL_EXPIRES_SECONDS',
  updatesCache: 'UPDATES_CACHE_SECONDS',
  /** Lambda log level; Powertools' own name, so its documentation applies as written. */
  logLevel: 'POWERTOOLS_LOG_LEVEL',
  /** The older name Powertools also reads, used when POWERTOOLS_LOG_LEVEL is unset. */
  logLevelAlias: 'LOG_LEVEL',
} as const;

/** Levels of the Lambda log, quietest last (Powertools Logger's names). */
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevelName = 'INFO';

/**
 * The Lambda log level from POWERTOOLS_LOG_LEVEL (or LOG_LEVEL), INFO when neither is set. A
 * misspelt level throws: Powertools alone would fall back to INFO without a word.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv): LogLevelName {
  const name = env[ENV.logLevel] ? ENV.logLevel : ENV.logLevelAlias;
  const raw = env[name];
  if (raw === undefined || raw === '') return DEFAULT_LOG_LEVEL;
  const level = LOG_LEVELS.find((known) => known === raw.toUpperCase());
  if (!level) throw new ConfigError(`Invalid ${name} "${raw}": use one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * The SDK's convention for other endpoints (a VPC endpoint, a local stand-in for tests):
 * AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3, or AWS_ENDPOINT_URL for both. Read here only,
 * for the functions and for the builder's tools alike.
 */
export function awsEndpointsFromEnv(env: NodeJS.ProcessEnv): {
  dynamoEndpoint?: string;
  s3Endpoint?: string;
} {
  const dynamoEndpoint = env.AWS_ENDPOINT_URL_DYNAMODB || env.AWS_ENDPOINT_URL || undefined;
  const s3Endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  return { ...(dynamoEndpoint ? { dynamoEndpoint } : {}), ...(s3Endpoint ? { s3Endpoint } : {}) };
}

export function cloudConfigFromEnv(env: NodeJS.ProcessEnv, needs: { images: boolean }): CloudConfig {
  const { dynamoEndpoint, s3Endpoint } = awsEndpointsFromEnv(env);
  return {
    tableName: requireEnv(env, ENV.table),
    ...(needs.images ? { bucketName: requireEnv(env, ENV.bucket) } : {}),
    region: requireEnv(env, 'AWS_REGION'),
    ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
    ...(s3Endpoint ? { s3Endpoint } : {}),
    urlExpiresSeconds: numberEnv(env, ENV.urlExpires, 3600, 1, 3600),
    updatesCacheSeconds: numberEnv(env, ENV.updatesCache, 30, 0, 30),
  };
}
