/**
 * A DynamoDB client of our own: the JSON 1.0 protocol over node:http(s), signed with SigV4.
 *
 * @aws-sdk/client-dynamodb was the floor of the checkin Lambda's bundle (~185 KiB with @smithy/core)
 * and ~33 ms of its ~42 ms cold import, for eight operations that are each one signed POST of JSON.
 * Errors keep DynamoDB's names (ConditionalCheckFailedException…) so functions/dynamo.ts maps them
 * to ours; network errors keep their Node `code`.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import * as zlib from 'node:zlib';
import { ALGORITHM, AmzClock, type AwsCredentials, dnsSuffix, SigningKeys, sha256Hex } from './sigv4.ts';

export type DynamoOperation =
  | 'GetItem'
  | 'BatchGetItem'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'Query'
  | 'BatchWriteItem'
  | 'TransactWriteItems'
  | 'CreateTable'
  | 'DescribeTable';

export interface DynamoClientOptions {
  readonly region: string;
  /** e.g. http://127.0.0.1:8000 (dynalite); default https://dynamodb.<region>.<partition domain>. */
  readonly endpoint?: string;
  /** Called before every attempt so rotated credentials take effect; cache inside when it is costly. */
  readonly credentials: () => AwsCredentials | Promise<AwsCredentials>;
  /** Current time in ms epoch; tests fix it. */
  readonly now?: () => number;
}

/** An error answer of DynamoDB; `name` is its type, e.g. ConditionalCheckFailedException. */
export class DynamoError extends Error {
  override readonly name: string;
  constructor(
    name: string,
    message: string,
    readonly status: number,
    readonly retryable: boolean = status >= 500 || THROTTLED.has(name),
    /** TransactionCanceledException: one code per write, e.g. None, ConditionalCheckFailed. */
    readonly cancellationReasons: readonly string[] = [],
  ) {
    super(message);
    this.name = name;
  }
}

/** Error types that mean "too fast, try again": 400s that are not the caller's fault. */
const THROTTLED = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  // The same ClientRequestToken is still being applied: asking again with it is the remedy.
  'TransactionInProgressException',
  // A plain write to an item that a transaction holds (an update's item, a counter shard): refused,
  // nothing applied, so even an ADD may go again.
  'TransactionConflictException',
]);

/** `code` of a request that got no answer within REQUEST_TIMEOUT_MS. */
export const REQUEST_TIMEOUT = 'ERR_DYNAMODB_TIMEOUT';

/** Node error codes of a connection that failed or dropped: DynamoDB is unreachable, not refusing. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  REQUEST_TIMEOUT,
]);

/** Fail fast: a device whose checkin waits on DynamoDB is better served a 503 with Retry-After. */
const CONNECT_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;
const MAX_ATTEMPTS = 3;
/** Full jitter over 50 ms, then 100 ms: short, since a device is waiting, and spread so retries do not clump. */
const BACKOFF_MS = 50;

const CONTENT_TYPE = 'application/x-amz-json-1.0';
const SIGNED_HEADERS = 'content-type;host;x-amz-date;x-amz-target';
const SIGNED_HEADERS_WITH_TOKEN = 'content-type;host;x-amz-date;x-amz-security-token;x-amz-target';

/**
 * AWS sends the CRC32 of every body so a corrupted answer is caught. node:zlib has crc32 from
 * Node 20.15 / 22.2; on older Node the check is skipped rather than carrying a JS implementation.
 */
const crc32: ((data: Buffer) => number) | undefined =
  typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

export function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return err instanceof Error && typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * Set on a network error whose request may have reached DynamoDB (the connection was up when it
 * failed): the write may have been applied, so only an idempotent request may be sent again.
 */
export const MAY_HAVE_APPLIED = Symbol('mayHaveApplied');

/** Whether a failed request may have changed the table: see MAY_HAVE_APPLIED; 5xx and corrupted answers may have. */
export function mayHaveApplied(err: unknown): boolean {
  if (err instanceof DynamoError) return err.status >= 500 || err.name === 'CRC32CheckFailed';
  return (err as { [MAY_HAVE_APPLIED]?: boolean } | undefined)?.[MAY_HAVE_APPLIED] === true;
}

/** Whether another attempt may succeed: throttling, 5xx and dropped connections, never 4xx validation or condition failures. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof DynamoError) return err.retryable;
  if (!isNetworkError(err)) return false;
  // A timed-out request may still be running, and waiting for it again would outlast the device's
  // patience and the Lambda's; ENOTFOUND is a wrong endpoint, not a blip.
  const { code } = err as { code: string };
  return code !== REQUEST_TIMEOUT && code !== 'ENOTFOUND';
}

/** The DynamoError of an error answer: `{"__type":"com.amazonaws.dynamodb.v20120810#Type","message":"…"}`. */
export function parseDynamoError(status: number, body: string, errorTypeHeader?: string): DynamoError {
  let json:
    | { __type?: unknown; message?: unknown; Message?: unknown; CancellationReasons?: unknown }
    | undefined;
  try {
    json = JSON.parse(body) ?? undefined;
  } catch {
    // Not JSON (a proxy's HTML page, a cut body): the status says enough.
  }
  // x-amzn-errortype reads `Type:http://internal.amazon.com/…`; it stands in when the body has no type.
  const rawType = typeof json?.__type === 'string' ? json.__type : errorTypeHeader?.split(':')[0];
  const type = rawType ? rawType.slice(rawType.lastIndexOf('#') + 1) : undefined;
  const message = json?.message ?? json?.Message;
  const reasons = Array.isArray(json?.CancellationReasons)
    ? json.CancellationReasons.map((r: { Code?: unknown } | null) => String(r?.Code ?? 'None'))
    : [];
  const name = type || (status >= 500 ? 'InternalServerError' : 'UnknownError');
  return new DynamoError(
    name,
    typeof message === 'string' && message ? message : `DynamoDB answered HTTP ${status}`,
    status,
    status >= 500 || THROTTLED.has(name),
    reasons,
  );
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export class DynamoClient {
  readonly #credentials: () => AwsCredentials | Promise<AwsCredentials>;
  readonly #now: () => number;
  readonly #keys: SigningKeys;
  readonly #clock = new AmzClock();
  readonly #url: URL;
  /** The signed `host` header: includes the port when it is not the scheme's default. */
  readonly #host: string;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;

  constructor(options: DynamoClientOptions) {
    const { region } = options;
    this.#credentials = options.credentials;
    this.#now = options.now ?? Date.now;
    this.#keys = new SigningKeys(region, 'dynamodb');
    const endpoint = options.endpoint ?? `https://dynamodb.${region}.${dnsSuffix(region)}`;
    this.#url = parseEndpoint(endpoint);
    this.#host = this.#url.host;
    // Keep-alive: a TLS handshake per request would cost more than the request.
    const https = this.#url.protocol === 'https:';
    this.#agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.#request = https ? httpsRequest : httpRequest;
  }

  /**
   * Calls `operation` with `input` (DynamoDB's JSON shapes); retries throttling, 5xx and dropped
   * connections. A request that is not `idempotent` (default: UpdateItem, whose ADD would apply
   * twice) is sent again only when the failed attempt cannot have reached the table: throttled, or
   * refused before the connection was up.
   */
  async send<T>(
    operation: DynamoOperation,
    input: object,
    options: { readonly idempotent?: boolean } = {},
  ): Promise<T> {
    const idempotent = options.idempotent ?? operation !== 'UpdateItem';
    const payload = Buffer.from(JSON.stringify(input));
    for (let attempt = 1; ; attempt++) {
      try {
        const headers = this.signedHeaders(operation, payload, await this.#credentials(), this.#now());
        return read<T>(await this.#post(headers, payload));
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !isRetryable(err)) throw err;
        if (!idempotent && mayHaveApplied(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * BACKOFF_MS * 2 ** (attempt - 1)));
      }
    }
  }

  /** The headers of one request at time `now` (ms epoch), `authorization` included. */
  signedHeaders(
    operation: DynamoOperation,
    payload: Buffer,
    credentials: AwsCredentials,
    now: number,
  ): Record<string, string> {
    const { amzDate, dateStamp } = this.#clock.set(now);
    const target = `DynamoDB_20120810.${operation}`;
    const token = credentials.sessionToken || undefined;
    const signed = token === undefined ? SIGNED_HEADERS : SIGNED_HEADERS_WITH_TOKEN;
    const canonicalRequest =
      `POST\n/\n\ncontent-type:${CONTENT_TYPE}\nhost:${this.#host}\nx-amz-date:${amzDate}\n` +
      (token === undefined ? '' : `x-amz-security-token:${token}\n`) +
      `x-amz-target:${target}\n\n${signed}\n${sha256Hex(payload)}`;
    const signature = this.#keys.sign(credentials.secretAccessKey, dateStamp, amzDate, canonicalRequest);
    return {
      'content-type': CONTENT_TYPE,
      host: this.#host,
      'x-amz-date': amzDate,
      ...(token === undefined ? {} : { 'x-amz-security-token': token }),
      'x-amz-target': target,
      authorization:
        `${ALGORITHM} Credential=${credentials.accessKeyId}/${this.#keys.scope(dateStamp)}, ` +
        `SignedHeaders=${signed}, Signature=${signature}`,
    };
  }

  /** Closes the kept-alive connections. */
  destroy(): void {
    this.#agent.destroy();
  }

  #post(headers: Record<string, string>, payload: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      // Once the connection is up the request may be read by DynamoDB, whatever fails after.
      let connected = false;
      const req = this.#request(
        {
          protocol: this.#url.protocol,
          hostname: this.#url.hostname.replace(/^\[|\]$/g, ''),
          port: this.#url.port || undefined,
          path: '/',
          method: 'POST',
          headers: { ...headers, 'content-length': payload.length },
          agent: this.#agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', (err) => reject(Object.assign(err, { [MAY_HAVE_APPLIED]: true })));
        },
      );
      const fail = (message: string, code: string) =>
        req.destroy(Object.assign(new Error(message), { code }));
      const requestTimer = setTimeout(
        () =>
          fail(`DynamoDB at ${this.#host} did not answer within ${REQUEST_TIMEOUT_MS} ms`, REQUEST_TIMEOUT),
        REQUEST_TIMEOUT_MS,
      );
      let connectTimer: NodeJS.Timeout | undefined;
      req.on('socket', (socket) => {
        // Only new connections: a kept-alive socket is connected already.
        if (!socket.connecting) {
          connected = true;
          return;
        }
        connectTimer = setTimeout(
          () =>
            fail(`Connecting to DynamoDB at ${this.#host} took over ${CONNECT_TIMEOUT_MS} ms`, 'ETIMEDOUT'),
          CONNECT_TIMEOUT_MS,
        );
        socket.once('connect', () => {
          connected = true;
          clearTimeout(connectTimer);
        });
      });
      req.on('close', () => {
        clearTimeout(requestTimer);
        clearTimeout(connectTimer);
      });
      req.on('error', (err) => reject(Object.assign(err, { [MAY_HAVE_APPLIED]: connected })));
      req.end(payload);
    });
  }
}

function read<T>(answer: Answer): T {
  const expected = answer.headers['x-amz-crc32'];
  if (crc32 !== undefined && typeof expected === 'string' && crc32(answer.body) !== Number(expected)) {
    // A body damaged on the way: asking again is the remedy.
    throw new DynamoError(
      'CRC32CheckFailed',
      `DynamoDB answer failed its CRC32 check (HTTP ${answer.status})`,
      answer.status,
      true,
    );
  }
  const text = answer.body.toString('utf8');
  if (answer.status < 200 || answer.status > 299) {
    const errorType = answer.headers['x-amzn-errortype'];
    throw parseDynamoError(answer.status, text, typeof errorType === 'string' ? errorType : undefined);
  }
  return (text ? JSON.parse(text) : {}) as T;
}

function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw new Error(`Invalid DynamoDB endpoint "${endpoint}": expected a URL like http://127.0.0.1:8000`, {
      cause,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`Invalid DynamoDB endpoint "${endpoint}": the scheme must be http or https`);
  }
  // DynamoDB is served at `/`, which is what the canonical request above signs.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    throw new Error(`Invalid DynamoDB endpoint "${endpoint}": expected scheme, host and port only`);
  }
  return url;
}
