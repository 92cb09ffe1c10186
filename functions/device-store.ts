/**
 * What the checkin and report handlers need from the table, one unit per concern over the one
 * DynamoDB adapter: token scopes, the update catalog, the rollout ledger (grants and limits), the
 * phase ledger (phased rollouts), the report ledger (outcomes) and the device registry. Their caches live in them, per container.
 */

import { UpdateCatalog } from './catalog.ts';
import type { ConflictReporter } from './conflicts.ts';
import { type Item, Table } from './dynamo.ts';
import type { Metrics } from './metrics.ts';
import { PhaseLedger } from './phase-ledger.ts';
import { DeviceRegistry } from './registry.ts';
import { ReportLedger } from './report-ledger.ts';
import { RolloutLedger } from './rollout-ledger.ts';
import { TokenScopes } from './token-scopes.ts';

// Kept for the CLI and tests that import them from here (the admin module will own them).
export { bumpStamp } from './catalog.ts';
export { hashToken, type TokenScope } from './token-scopes.ts';

export interface DeviceStoreOptions {
  /** How long a product's update list is served from memory before the product stamp is re-read. */
  readonly updatesRevalidateMs: number;
  /** Reload a product's update list at least this often, even when its stamp did not move. */
  readonly updatesFullReloadMs: number;
  /** How long a token lookup (found or not) is cached. */
  readonly tokenCacheMs: number;
  /** Skip rewriting a device's registry entry when unchanged and younger than this. */
  readonly registryRefreshMs: number;
  /** See CatalogOptions.changeSignal. */
  readonly changeSignal?: () => number;
  /** See RegistryOptions.batchMs. */
  readonly registryBatchMs?: number;
  /** Told about stored items that are not valid updates (skipped, never served). */
  readonly onBadRecord?: (item: Item) => void;
  /**
   * Write summed deferral counts once the last write is this old (0: at every flush). Lambda
   * batches them (AGGREGATES.lambdaCounterBatchMs): one write per checkin would make the update's
   * item a hot key.
   */
  readonly counterBatchMs?: number;
  /** Where the rollout ledger counts UpdateStarted and UpdateDeferred. */
  readonly metrics: Metrics;
  /** See RegistryOptions.conflicts. */
  readonly conflicts?: ConflictReporter;
  readonly now?: () => number;
}

export class DeviceStore {
  private deferralsWritten = 0;
  private readonly counterBatchMs: number;
  private readonly now: () => number;
  readonly tokens: TokenScopes;
  readonly catalog: UpdateCatalog;
  readonly rollout: RolloutLedger;
  readonly phases: PhaseLedger;
  readonly reports: ReportLedger;
  readonly registry: DeviceRegistry;

  constructor(
    readonly table: Table,
    options: DeviceStoreOptions,
  ) {
    const now = options.now ?? Date.now;
    this.now = now;
    this.counterBatchMs = options.counterBatchMs ?? 0;
    this.tokens = new TokenScopes(table, options.tokenCacheMs, now);
    this.catalog = new UpdateCatalog(table, {
      revalidateMs: options.updatesRevalidateMs,
      fullReloadMs: options.updatesFullReloadMs,
      now,
      ...(options.changeSignal ? { changeSignal: options.changeSignal } : {}),
      ...(options.onBadRecord ? { onBadRecord: options.onBadRecord } : {}),
    });
    this.rollout = new RolloutLedger(table, {
      limitMemoryMs: options.updatesRevalidateMs,
      metrics: options.metrics,
      now,
    });
    this.phases = new PhaseLedger(table);
    this.reports = new ReportLedger(table, now);
    const countingTable = new Table({
      tableName: table.name,
      region: 'unused',
      client: table.client,
      ...(table.endpoint ? { endpoint: table.endpoint } : {}),
    });
    this.registry = new DeviceRegistry(
      table,
      {
        refreshMs: options.registryRefreshMs,
        now,
        ...(options.conflicts ? { conflicts: options.conflicts } : {}),
        ...(options.registryBatchMs !== undefined ? { batchMs: options.registryBatchMs } : {}),
      },
      countingTable,
    );
  }

  /** Writes what the units summed in memory: deferral counts and buffered registry entries. */
  async flush(): Promise<void> {
    const now = this.now();
    const deferralsDue = now - this.deferralsWritten >= this.counterBatchMs;
    if (deferralsDue) this.deferralsWritten = now;
    const results = await Promise.allSettled([
      deferralsDue ? this.rollout.flushDeferrals() : Promise.resolve(),
      this.registry.flush(),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Stops background flushing (the host flushes once more itself before closing). */
  close(): void {
    this.registry.close();
  }
}
