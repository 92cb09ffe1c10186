/**
 * A fault-injecting HTTP proxy in front of dynalite, and an app whose store goes through it: the
 * flaky network or dying process the ledger and aggregate tests replay their writes across.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import type { App } from '#functions/app.ts';
import { createCloud } from '#functions/cloud.ts';
import type { TestCloud } from '#test/support/cloud.ts';

/** Where a request is cut off: before dynalite sees it, or after it applied it (the answer lost). */
export type Drop = 'before' | 'after';

/**
 * Forwards every request to `target` unless `fate` says to drop it; a dropped request has its
 * connection reset, and `onDrop` hears of it when that happens.
 */
export abstract class FaultyDynamoProxy {
  private server: Server | undefined;
  url = '';
  constructor(private readonly target: URL) {}

  /** `op` is the DynamoDB operation (PutItem, TransactWriteItems...), `body` the request's JSON. */
  protected abstract fate(op: string, body: Buffer): Drop | undefined;
  protected onDrop(_when: Drop): void {}
  /** An answer to send instead of forwarding the request (DynamoDB's JSON error shape, say). */
  protected answer(_op: string, _body: Buffer): { status: number; body: object } | undefined {
    return undefined;
  }

  async open(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const op = String(req.headers['x-amz-target']).split('.')[1] ?? '';
        const scripted = this.answer(op, body);
        if (scripted) {
          const bytes = Buffer.from(JSON.stringify(scripted.body));
          res.writeHead(scripted.status, {
            'content-type': 'application/x-amz-json-1.0',
            'x-amz-crc32': String(crc32(bytes)),
          });
          return res.end(bytes);
        }
        const drop = this.fate(op, body);
        if (drop === 'before') {
          this.onDrop('before');
          return req.socket.destroy();
        }
        const upstream = request(
          {
            host: this.target.hostname,
            port: this.target.port,
            method: 'POST',
            path: '/',
            headers: req.headers,
          },
          (answer) => {
            const out: Buffer[] = [];
            answer.on('data', (c: Buffer) => out.push(c));
            answer.on('end', () => {
              if (drop === 'after') {
                this.onDrop('after');
                return req.socket.destroy();
              }
              res.writeHead(answer.statusCode ?? 500, answer.headers);
              res.end(Buffer.concat(out));
            });
          },
        );
        upstream.end(body);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

/** DynamoDB operations that write. */
export const isWrite = (op: string) => /Put|Update|Delete|Write/.test(op);

/**
 * Once armed, forwards the Nth write that `counts` (every write by default), lets dynalite apply
 * it, then resets that and every later request: the process that sent it died right after the
 * write landed, until `revive`.
 */
export class KillingProxy extends FaultyDynamoProxy {
  private writes = 0;
  private killAt = Number.POSITIVE_INFINITY;
  dead = false;

  constructor(
    target: URL,
    private readonly counts: (op: string, body: Buffer) => boolean = isWrite,
  ) {
    super(target);
  }

  /** The store reachable again: the process lived through the failure. */
  revive(): void {
    this.dead = false;
  }

  arm(n: number): void {
    this.writes = 0;
    this.killAt = n;
  }

  protected fate(op: string, body: Buffer): Drop | undefined {
    if (this.dead) return 'before';
    return this.counts(op, body) && ++this.writes === this.killAt ? 'after' : undefined;
  }

  protected override onDrop(when: Drop): void {
    if (when === 'after') this.dead = true;
  }
}

/** An app as Lambda runs it (no registry batching) whose store goes through `proxy`. */
export function appThrough(cloud: TestCloud, proxy: FaultyDynamoProxy): App {
  return createCloud(
    {
      ...cloud.file,
      dynamoEndpoint: proxy.url,
      s3Endpoint: cloud.s3Url,
      urlExpiresSeconds: 3600,
      updatesCacheSeconds: 0,
    },
    {
      metrics: () => ({ count() {}, async flush() {} }),
      log: { info() {}, warn() {}, error() {} },
      credentials: () => cloud.file.credentials,
    },
  ).app;
}
