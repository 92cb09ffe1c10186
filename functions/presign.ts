/**
 * Presigned S3 GET URLs for the checkin hot path: SigV4 query-string signing with node:crypto only.
 *
 * The AWS SDK's `getSignedUrl` costs ~380 µs a call (endpoint rules, middleware stack, key
 * derivation every time) and drags the S3 client into the Lambda bundle. This file imports nothing
 * from AWS; its URLs are byte-identical to the SDK's (`GetObjectCommand` with
 * `requestChecksumCalculation`/`responseChecksumValidation: 'WHEN_REQUIRED'`), which
 * test/unit/presign.test.ts checks case by case.
 */
import { ALGORITHM, AmzClock, type AwsCredentials, dnsSuffix, SigningKeys } from './sigv4.ts';

// Their home moved to sigv4.ts when the DynamoDB client started sharing them; importers of this file keep working.
export { type AwsCredentials, credentialsFromEnv } from './sigv4.ts';

/** Where the images live. */
export interface S3Location {
  /** e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:4569 (s3rver); default: the region's AWS endpoint. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** path-style (required for s3rver / custom endpoints); virtual-hosted otherwise. */
  forcePathStyle: boolean;
}

/** SigV4 allows presigned URLs to live at most one week. */
const MAX_EXPIRES_IN = 604_800;

/**
 * The query parameters sort as SigV4 requires (by code point: every `X-Amz-*` before `x-id`), so the
 * URL is built by concatenation in that order. `x-id=GetObject` is what the SDK adds for GetObject;
 * it is signed like any other parameter. The SDK hoists `x-amz-content-sha256: UNSIGNED-PAYLOAD`
 * into the query, and S3 presigns always sign that payload hash.
 */
const QUERY_HEAD = `X-Amz-Algorithm=${ALGORITHM}&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Credential=`;
const QUERY_TAIL = '&X-Amz-SignedHeaders=host&x-id=GetObject';

const REGION = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A bucket the SDK addresses as `<bucket>.<host>` (a DNS label; dotted names would break TLS);
 * any other bucket falls back to path style, as in the SDK.
 */
const VIRTUAL_HOSTABLE_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Keys made only of these need no escaping, which is the common case (images/<product>/<version>/<file>). */
const UNRESERVED_PATH = /^[A-Za-z0-9\-._~/]*$/;

/**
 * RFC 3986 escaping of an S3 key as the SDK does it: '/' stays, everything else outside the
 * unreserved set is %XX of its UTF-8 bytes (encodeURIComponent leaves `!'()*` alone, so those are
 * escaped after). Turning %2F back into '/' is safe because a literal '%' in the key becomes %25.
 */
function encodeS3Key(key: string): string {
  if (UNRESERVED_PATH.test(key)) return key;
  return encodeURIComponent(key)
    .replace(/%2F/g, '/')
    .replace(/[!'()*]/g, escapeChar);
}

function escapeChar(c: string): string {
  return `%${c.charCodeAt(0).toString(16).toUpperCase()}`;
}

/** RFC 3986 escaping of a query value (encodeURIComponent plus `!'()*`). */
function encodeQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, escapeChar);
}

/** The query parts that depend only on the credentials and the UTC day, rebuilt when either changes. */
interface SigningState {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string | undefined;
  readonly dateStamp: string;
  /** QUERY_HEAD plus the escaped credential. */
  readonly queryHead: string;
  /** '' or `&X-Amz-Security-Token=<escaped token>`; it sorts between X-Amz-Expires and X-Amz-Signature. */
  readonly tokenParam: string;
}

export class Presigner {
  readonly #keys: SigningKeys;
  readonly #clock = new AmzClock();
  readonly #credentials: () => AwsCredentials;
  /** `<scheme>://<host[:port]>` of the URLs. */
  readonly #origin: string;
  /** The signed `host` header: includes the port when it is not the scheme's default. */
  readonly #host: string;
  /** Endpoint path prefix, plus `/<bucket>` when path-style. Already escaped. */
  readonly #pathPrefix: string;
  #signing: SigningState | undefined;

  /**
   * @param credentials called on every presign so rotated credentials take effect; must be cheap.
   * The signing key is derived again only when the secret or the UTC date changes.
   */
  constructor(location: S3Location, credentials: () => AwsCredentials) {
    const { region, bucket } = location;
    if (!REGION.test(region)) throw new Error(`Invalid S3 region "${region}": expected e.g. us-east-1`);
    if (bucket.length === 0 || bucket.length > 255) {
      throw new Error(`Invalid S3 bucket name "${bucket}": expected 1-255 characters`);
    }
    this.#keys = new SigningKeys(region, 's3');
    this.#credentials = credentials;

    const endpoint = parseEndpoint(location.endpoint ?? `https://s3.${region}.${dnsSuffix(region)}`);
    // As in the SDK: virtual-hosted only for DNS-label bucket names, and never on an IP-address host.
    const pathStyle =
      location.forcePathStyle || !VIRTUAL_HOSTABLE_BUCKET.test(bucket) || isIpHost(endpoint.hostname);
    const host = pathStyle ? endpoint.host : `${bucket}.${endpoint.host}`;
    this.#host = host;
    this.#origin = `${endpoint.protocol}//${host}`;
    this.#pathPrefix = endpoint.path + (pathStyle ? `/${encodeS3Key(bucket)}` : '');
  }

  /** Presigned GET URL valid `expiresIn` seconds (1..604800, we use ≤3600), at time `now` (ms epoch, default Date.now()). */
  presignGet(key: string, expiresIn: number, now: number = Date.now()): string {
    if (key.length === 0) throw new RangeError('Cannot presign an empty S3 key');
    if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRES_IN) {
      throw new RangeError(
        `Invalid expiresIn ${expiresIn}: expected whole seconds from 1 to ${MAX_EXPIRES_IN}`,
      );
    }
    const { amzDate, dateStamp } = this.#clock.set(now);
    const signing = this.#signingState(this.#credentials(), dateStamp);

    const path = `${this.#pathPrefix}/${encodeS3Key(key)}`;
    const query = `${signing.queryHead}&X-Amz-Date=${amzDate}&X-Amz-Expires=${expiresIn}${signing.tokenParam}`;
    const canonicalRequest = `GET\n${path}\n${query}${QUERY_TAIL}\nhost:${this.#host}\n\nhost\nUNSIGNED-PAYLOAD`;
    const signature = this.#keys.sign(signing.secretAccessKey, dateStamp, amzDate, canonicalRequest);
    return `${this.#origin}${path}?${query}&X-Amz-Signature=${signature}${QUERY_TAIL}`;
  }

  #signingState(credentials: AwsCredentials, dateStamp: string): SigningState {
    const cached = this.#signing;
    const sessionToken = credentials.sessionToken || undefined;
    if (
      cached !== undefined &&
      cached.dateStamp === dateStamp &&
      cached.secretAccessKey === credentials.secretAccessKey &&
      cached.accessKeyId === credentials.accessKeyId &&
      cached.sessionToken === sessionToken
    ) {
      return cached;
    }
    const { accessKeyId, secretAccessKey } = credentials;
    this.#signing = {
      accessKeyId,
      secretAccessKey,
      sessionToken,
      dateStamp,
      queryHead: QUERY_HEAD + encodeQueryValue(`${accessKeyId}/${this.#keys.scope(dateStamp)}`),
      tokenParam: sessionToken === undefined ? '' : `&X-Amz-Security-Token=${encodeQueryValue(sessionToken)}`,
    };
    return this.#signing;
  }
}

interface Endpoint {
  readonly protocol: string;
  readonly hostname: string;
  /** hostname plus a non-default port. */
  readonly host: string;
  /** '' or an escaped path prefix without trailing '/'. */
  readonly path: string;
}

function parseEndpoint(endpoint: string): Endpoint {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw new Error(`Invalid S3 endpoint "${endpoint}": expected a URL like http://127.0.0.1:4569`, {
      cause,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`Invalid S3 endpoint "${endpoint}": the scheme must be http or https`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error(`Invalid S3 endpoint "${endpoint}": expected no query, fragment or user info`);
  }
  // URL drops default ports (443, 80) from `host`, as the SDK's host header does.
  return {
    protocol: url.protocol,
    hostname: url.hostname,
    host: url.host,
    path: url.pathname.replace(/\/+$/, ''),
  };
}

function isIpHost(hostname: string): boolean {
  return hostname.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(hostname);
}
