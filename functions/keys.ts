/**
 * The single-table layout (DESIGN §5): string keys pk/sk. Every item kind is named here, nowhere else.
 *
 * | item            | pk                 | sk                       |
 * |-----------------|--------------------|--------------------------|
 * | update          | P#<product>        | U#<updateId>             |
 * | update counters | P#<product>        | C#<updateId>#<shard>     |
 * | version guard   | P#<product>        | V#<precedence key>       |
 * | product stamp   | P#<product>        | STAMP                    |
 * | grant           | G#<updateId>       | <deviceId>               |
 * | rate window     | R#<updateId>       | <window index>           |
 * | report          | E#<updateId>       | <deviceId>#<status>      |
 * | device          | DEV#<product>      | <deviceId>               |
 * | daily metrics   | M#<product>        | <yyyy-mm-dd>             |
 * | device counts   | AGG#<product>      | D#<shard>                |
 * | devices of a day| AGG#<product>      | Y#<yyyy-mm-dd>#<shard>   |
 * | hourly series   | AGG#<product>      | H#<yyyy-mm-ddThh>#<scope>#<shard> |
 * | failure reason  | F#<updateId>       | <reason digest>#<shard>  |
 * | failed device   | F#<upd>#<rd>#<sh>  | <time>#<deviceId>        |
 * | device's last   | DL#<product>       | <deviceId>               |
 * | token           | TOKEN              | <sha256 hex of token>    |
 * | intent          | TX                 | <transaction token>      |
 *
 * Device counts (devices per version, seen per day) and hourly series are the fleet aggregates of
 * functions/aggregates.ts; a series' scope is an update id or `*` for the whole product.
 * An intent is a transaction of the embedded store in flight (functions/embedded-transact.ts), or
 * a batch of registry changes (functions/embedded-batch.ts).
 */

export const keys = {
  update: (product: string, updateId: string) => ({ pk: `P#${product}`, sk: `U#${updateId}` }),
  updatesOf: (product: string) => ({ pk: `P#${product}`, skPrefix: 'U#' }),
  /** One shard of an update's per-device counters (functions/update-counters.ts). */
  updateCounters: (product: string, updateId: string, shard: number) => ({
    pk: `P#${product}`,
    sk: `C#${updateId}#${shard}`,
  }),
  /** The counter shards of a product's updates, or of one of them. */
  updateCountersOf: (product: string, updateId?: string) => ({
    pk: `P#${product}`,
    skPrefix: updateId === undefined ? 'C#' : `C#${updateId}#`,
  }),
  versionGuard: (product: string, precedence: string) => ({ pk: `P#${product}`, sk: `V#${precedence}` }),
  stamp: (product: string) => ({ pk: `P#${product}`, sk: 'STAMP' }),
  grant: (updateId: string, deviceId: string) => ({ pk: `G#${updateId}`, sk: deviceId }),
  grantsOf: (updateId: string) => ({ pk: `G#${updateId}` }),
  rateWindow: (updateId: string, window: number) => ({ pk: `R#${updateId}`, sk: String(window) }),
  report: (updateId: string, deviceId: string, status: string) => ({
    pk: `E#${updateId}`,
    sk: `${deviceId}#${status}`,
  }),
  reportsOf: (updateId: string) => ({ pk: `E#${updateId}` }),
  device: (product: string, deviceId: string) => ({ pk: `DEV#${product}`, sk: deviceId }),
  devicesOf: (product: string) => ({ pk: `DEV#${product}` }),
  /** One shard of a failure reason's count: a device always counts in the same shard. */
  failureReason: (updateId: string, reasonDigest: string, shard: number) => ({
    pk: `F#${updateId}`,
    sk: `${reasonDigest}#${shard}`,
  }),
  failureReasonsOf: (updateId: string) => ({ pk: `F#${updateId}` }),
  /** A device in a failure reason's group; sk sorts by the time it failed. */
  failedDevice: (updateId: string, reasonDigest: string, shard: number, at: string, deviceId: string) => ({
    pk: `F#${updateId}#${reasonDigest}#${shard}`,
    sk: `${at}#${deviceId}`,
  }),
  failedDevicesOf: (updateId: string, reasonDigest: string, shard: number) => ({
    pk: `F#${updateId}#${reasonDigest}#${shard}`,
  }),
  /** The update a device last reported an outcome of, and that outcome. */
  deviceLastUpdate: (product: string, deviceId: string) => ({ pk: `DL#${product}`, sk: deviceId }),
  metrics: (product: string, day: string) => ({ pk: `M#${product}`, sk: day }),
  metricsOf: (product: string) => ({ pk: `M#${product}` }),
  deviceCounts: (product: string, shard: number) => ({ pk: `AGG#${product}`, sk: `D#${shard}` }),
  deviceCountsOf: (product: string) => ({ pk: `AGG#${product}`, skPrefix: 'D#' }),
  daySeen: (product: string, day: string, shard: number) => ({
    pk: `AGG#${product}`,
    sk: `Y#${day}#${shard}`,
  }),
  /** The day items of the days `from` to `to` (yyyy-mm-dd, inclusive): one run of sort keys. */
  daysSeenBetween: (product: string, from: string, to: string) => ({
    pk: `AGG#${product}`,
    sk: { from: `Y#${from}#`, to: `Y#${to}#~` },
  }),
  series: (product: string, hour: string, scope: string, shard: number) => ({
    pk: `AGG#${product}`,
    sk: `H#${hour}#${scope}#${shard}`,
  }),
  /** The series items of the hours `from` to `to` (yyyy-mm-ddThh, inclusive): one run of sort keys. */
  seriesBetween: (product: string, from: string, to: string) => ({
    pk: `AGG#${product}`,
    sk: { from: `H#${from}#`, to: `H#${to}#~` },
  }),
  token: (hash: string) => ({ pk: 'TOKEN', sk: hash }),
  tokens: () => ({ pk: 'TOKEN' }),
  intent: (token: string) => ({ pk: 'TX', sk: token }),
  intents: () => ({ pk: 'TX' }),
} as const;

/** The metric names of DESIGN §4.6 (Ioto's). */
export const METRICS = [
  'UpdateRequests',
  'UpdateDeferred',
  'UpdateStarted',
  'UpdateSuccess',
  'UpdateFailure',
  'PolicyErrors',
  /** Checkins whose registry entry was left for their next checkin: its count shard stayed conflicted. */
  'RegistryConflicts',
] as const;
export type MetricName = (typeof METRICS)[number];
