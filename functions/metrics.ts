/**
 * Metrics named after Ioto's (DESIGN §4.6). In Lambda they leave as CloudWatch Embedded Metric
 * Format lines (no API call on the hot path); in the local cloud they are summed in memory and
 * flushed to the table per product and day, where `updraft stats` reads them.
 */
import type { Table } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys, type MetricName } from './keys.ts';

export interface Metrics {
  count(product: string, name: MetricName, n?: number): void;
  /** Sends what was counted. Lambda calls it before returning; the local cloud on a timer. */
  flush(): Promise<void>;
}

/** Sums counts per product; the sinks below decide where sums go. */
abstract class SummingMetrics implements Metrics {
  protected sums = new Map<string, Map<MetricName, number>>();

  count(product: string, name: MetricName, n = 1): void {
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
