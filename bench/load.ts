/** A small keep-alive HTTP load generator shared by the checkin benchmarks and `npm run load`. */
import { Agent, request } from 'node:http';

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statuses: Record<number, number>;
}

export interface LoadOptions {
  readonly url: string;
  /** Body of the i-th request. */
  readonly body: (i: number) => string;
  readonly headers?: Record<string, string>;
  readonly concurrency?: number;
  readonly durationMs: number;
  /** Stop after this many requests instead of after durationMs. */
  readonly requests?: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const concurrency = options.concurrency ?? 32;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let errors = 0;
  let next = 0;
  const deadline = performance.now() + options.durationMs;
  const one = (body: string) =>
    new Promise<number>((resolve) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...options.headers,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });
  const more =
    options.requests !== undefined ? () => next < options.requests! : () => performance.now() < deadline;
  const worker = async () => {
    while (more()) {
      const body = options.body(next++);
      const start = performance.now();
      const status = await one(body);
      latencies.push(performance.now() - start);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status < 200 || status >= 300) errors++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - start;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    requests: latencies.length,
    errors,
    perSecond: (latencies.length / elapsed) * 1000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    statuses,
  };
}
