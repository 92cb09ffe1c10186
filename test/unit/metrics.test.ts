/** The CloudWatch Embedded Metric Format lines the Lambda functions write (DESIGN §4.6). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EmfMetrics } from '#functions/metrics.ts';

const NOW = Date.UTC(2030, 0, 2, 3, 4, 5);

beforeEach(() => {
  vi.useFakeTimers({ now: NOW });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('EmfMetrics', () => {
  it('writes one EMF line per product with the namespace, the product dimension and the summed counts', async () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics('Updraft', (line) => lines.push(line));
    metrics.count('demo', 'UpdateRequests');
    metrics.count('demo', 'UpdateRequests', 2);
    metrics.count('demo', 'UpdateSuccess');
    metrics.count('other', 'UpdateFailure', 4);

    await metrics.flush();

    expect(lines.map((line) => JSON.parse(line))).toEqual([
      {
        _aws: {
          Timestamp: NOW,
          CloudWatchMetrics: [
            {
              Namespace: 'Updraft',
              Dimensions: [['product']],
              Metrics: [
                { Name: 'UpdateRequests', Unit: 'Count' },
                { Name: 'UpdateSuccess', Unit: 'Count' },
              ],
            },
          ],
        },
        product: 'demo',
        UpdateRequests: 3,
        UpdateSuccess: 1,
      },
      {
        _aws: {
          Timestamp: NOW,
          CloudWatchMetrics: [
            {
              Namespace: 'Updraft',
              Dimensions: [['product']],
              Metrics: [{ Name: 'UpdateFailure', Unit: 'Count' }],
            },
          ],
        },
        product: 'other',
        UpdateFailure: 4,
      },
    ]);
    // Each is a single line: CloudWatch reads one JSON object per log line.
    for (const line of lines) expect(line).not.toContain('\n');
  });

  it('writes nothing when nothing was counted since the last flush', async () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics('Updraft', (line) => lines.push(line));
    metrics.count('demo', 'UpdateRequests');
    await metrics.flush();
    await metrics.flush();

    expect(lines).toHaveLength(1);
  });
});
