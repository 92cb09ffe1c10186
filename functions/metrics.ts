/**
 * Metrics named after Ioto's (DESIGN §4.6). In Lambda they leave as CloudWatch Embedded Metric
 * Format lines (no API call on the hot path); in the local cloud they are summed in memory and
 * flushed to the table per product and day. Either way SeriesMetrics also sums them per product and
 * update into the hourly series of functions/aggregates.ts, which `updraft stats` reads.
 */
import { hourOf, isSeriesMetric, PRODUCT_SCOPE, type SeriesMetric, seriesWrite } from './aggregates.ts';
import { AGGREGATES } from './config.ts';
import type { Table } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys, type MetricName } from './keys.ts';

export interface Metrics {
  /** `update`: the update the count is about, for its hourly series. */
  count(product: string, name: MetricName, n?: number, update?: string): void;
  /** Sends what was counted. Lambda calls it before returning; the local cloud on a timer. */
  flush(): Promise<void>;
}

/** Sums counts per product; the sinks below decide where sums go. */
abstract class SummingMetrics implements Metrics {
  protected sums = new Map<string, Map<MetricName, number>>();

  count(product: string, name: MetricName, n = 1, _update?: string): void {
    let perProduct = this.sums.get(product);
    if (!perProduct) {
      perProduct = new Map();
      this.sums.set(product, perProduct);
    }
    perProduct.set(name, (perProduct.get(name) ?? 0) + n);
  }

  protected take(): Map<string, Map<MetricName, number>> {
    const sums = this.sums;
    this.sums = new Map();
    return sums;
  }

  abstract flush(): Promise<void>;
}

export class EmfMetrics extends SummingMetrics {
  constructor(
    private readonly namespace = 'Updraft',
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {
    super();
  }

  async flush(): Promise<void> {
    for (const [product, counts] of this.take()) {
      const names = [...counts.keys()];
      this.write(
        JSON.stringify({
          _aws: {
            Timestamp: Date.now(),
            CloudWatchMetrics: [
              {
                Namespace: this.namespace,
                Dimensions: [['product']],
                Metrics: names.map((Name) => ({ Name, Unit: 'Count' })),
              },
            ],
          },
          product,
          ...Object.fromEntries(counts),
        }),
      );
    }
  }
}

export class TableMetrics extends SummingMetrics {
  constructor(private readonly table: Table) {
    super();
  }

  async flush(): Promise<void> {
    const sums = this.take();
    const day = new Date().toISOString().slice(0, 10);
    for (const [product, counts] of sums) {
      try {
        await this.table.update(keys.metrics(product, day), { add: Object.fromEntries(counts) });
      } catch (err) {
        // Keep the counts for the next flush rather than lose them while the store is down, unless
        // the write may have been applied: sending it again could count it twice.
        if (!(err instanceof StoreUnavailableError && err.mayHaveApplied))
          for (const [name, n] of counts) this.count(product, name, n);
        throw err;
      }
    }
  }
}

export interface SeriesOptions {
  /** Write sums once their oldest count is this old (0: at every flush). See AGGREGATES. */
  readonly batchMs: number;
  readonly now?: () => number;
}

/**
 * Passes counts on to `inner` and sums the series metrics per product, update and hour, written
 * as one ADD per (product or update, hour) to a random shard: at most one write per container and
 * item per `batchMs`, however many checkins it serves.
 */
export class SeriesMetrics implements Metrics {
  private sums = new Map<
    string,
    { product: string; hour: string; scope: string; counts: Record<string, number> }
  >();
  private oldest: number | undefined;
  private readonly now: () => number;

  constructor(
    private readonly inner: Metrics,
    private readonly table: Table,
    private readonly options: SeriesOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  count(product: string, name: MetricName, n = 1, update?: string): void {
    this.inner.count(product, name, n, update);
    if (!isSeriesMetric(name)) return;
    const now = this.now();
    const hour = hourOf(now);
    this.add(product, hour, PRODUCT_SCOPE, name, n);
    if (update !== undefined) this.add(product, hour, update, name, n);
    this.oldest ??= now;
  }

  private add(product: string, hour: string, scope: string, name: SeriesMetric, n: number): void {
    const key = `${product}\u0000${hour}\u0000${scope}`;
    const sum = this.sums.get(key) ?? { product, hour, scope, counts: {} };
    sum.counts[name] = (sum.counts[name] ?? 0) + n;
    this.sums.set(key, sum);
  }

  async flush(): Promise<void> {
    const inner = this.inner.flush();
    inner.catch(() => {});
    if (this.oldest !== undefined && this.now() - this.oldest >= this.options.batchMs) await this.writeSums();
    await inner;
  }

  /** Failed sums are kept for the next flush, unless the write may have been applied (see TableMetrics). */
  private async writeSums(): Promise<void> {
    const sums = [...this.sums.values()];
    this.sums = new Map();
    this.oldest = undefined;
    for (const [i, { product, hour, scope, counts }] of sums.entries()) {
      const shard = Math.floor(Math.random() * AGGREGATES.shards);
      const { key, update } = seriesWrite(product, hour, scope, counts, shard);
      try {
        await this.table.update(key, update);
      } catch (err) {
        const maybeApplied = err instanceof StoreUnavailableError && err.mayHaveApplied;
        for (const rest of sums.slice(maybeApplied ? i + 1 : i))
          for (const [name, n] of Object.entries(rest.counts))
            this.add(rest.product, rest.hour, rest.scope, name as SeriesMetric, n);
        this.oldest ??= this.now();
        throw err;
      }
    }
  }
}
