/**
 * SigV4 verification for the embedded store (DESIGN §5): the header signatures of the CLI's S3 and
 * DynamoDB requests, and the query signature of presigned image URLs. It recomputes the canonical
 * request the way functions/sigv4.ts signs one and compares signatures in constant time.
 * Each check answers undefined (valid) or a one-line reason for the 403.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ALGORITHM, SigningKeys } from '#functions/sigv4.ts';

export interface LocalCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What a request is checked against: the local cloud's own key, for one region and service. */
export class SignatureVerifier {
  readonly #keys: SigningKeys;

  constructor(
    readonly credentials: LocalCredentials,
    region: string,
    readonly service: 's3' | 'dynamodb',
    private readonly now: () => number = Date.now,
  ) {
    this.#keys = new SigningKeys(region, service);
  }

  /**
   * Checks `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
   * `payloadHash` is what the body hashes to (DynamoDB) or what the client declared (S3's
   * x-amz-content-sha256, which the signature covers).
   */
  verifyHeader(req: SignedRequest, payloadHash: string): string | undefined {
    const parsed = this.#parseAuthorization(req);
    if (typeof parsed === 'string') return parsed;
    const { signedHeaders, signature, amzDate, names } = parsed;
    const { path, query } = splitUrl(req.url);
    const canonicalPath = canonicalUri(path);
    if (canonicalPath === undefined) return 'malformed request path';
    const canonical = `${req.method}\n${canonicalPath}\n${canonicalQuery(query, false)}\n${canonicalHeaders(req.headers, names)}\n${signedHeaders}\n${payloadHash}`;
    return this.#compare(signature, amzDate, canonical);
  }

  /**
   * The checks of verifyHeader that need no body (form, access key, scope, clock): run before a
   * body is read, so a client without the local credentials cannot make the store buffer one.
   */
  verifyCredential(req: SignedRequest): string | undefined {
    const parsed = this.#parseAuthorization(req);
    return typeof parsed === 'string' ? parsed : undefined;
  }

  #parseAuthorization(req: SignedRequest) {
    const auth = req.headers.authorization;
    if (auth === undefined) return 'this store needs requests signed with the local cloud credentials';
    const match = AUTHORIZATION.exec(auth);
    if (!match) return 'malformed Authorization header: expected AWS4-HMAC-SHA256 with the local credentials';
    const [, credential = '', signedHeaders = '', signature = ''] = match;
    const amzDate = single(req.headers['x-amz-date']);
    if (amzDate === undefined) return 'missing X-Amz-Date header';
    const names = signedHeaders.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date'))
      return 'SignedHeaders must include host and x-amz-date';
    return (
      this.#checkScope(credential, amzDate) ??
      this.#checkSkew(amzDate) ?? { signedHeaders, signature, amzDate, names }
    );
  }

  /**
   * Checks a presigned GET URL's query signature and expiry. HEAD is checked as the GET it was
   * signed for: it reveals only the metadata of the object the URL names. `otherHosts`: Host values
   * the URL may have been signed for besides the request's own (the public address behind a proxy).
   */
  verifyPresigned(req: SignedRequest, otherHosts: readonly string[]): string | undefined {
    const { path, query } = splitUrl(req.url);
    const params = new Map<string, string>();
    for (const [name, value] of parseQuery(query)) params.set(name, value);
    if (params.get('X-Amz-Algorithm') !== ALGORITHM) return `presigned URL must use ${ALGORITHM}`;
    const amzDate = params.get('X-Amz-Date') ?? '';
    const signature = params.get('X-Amz-Signature') ?? '';
    const expires = Number(params.get('X-Amz-Expires'));
    if (params.get('X-Amz-SignedHeaders') !== 'host') return 'presigned URL must sign the host header only';
    const problem = this.#checkScope(params.get('X-Amz-Credential') ?? '', amzDate);
    if (problem) return problem;
    const signedAt = parseAmzDate(amzDate);
    if (!Number.isInteger(expires) || expires < 1 || expires > 604_800) return 'invalid X-Amz-Expires';
    const now = this.now();
    if (signedAt! > now + MAX_SKEW_MS) return 'presigned URL is dated in the future';
    if (now > signedAt! + expires * 1000) return 'presigned URL has expired: ask the cloud for a new one';
    const canonicalPath = canonicalUri(path);
    if (canonicalPath === undefined) return 'malformed request path';
    const payload = params.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
    const cquery = canonicalQuery(query, true);
    const own = single(req.headers.host);
    for (const host of new Set(own === undefined ? otherHosts : [own, ...otherHosts])) {
      const canonical = `GET\n${canonicalPath}\n${cquery}\nhost:${host}\n\nhost\n${payload}`;
      if (this.#compare(signature, amzDate, canonical) === undefined) return undefined;
    }
    return 'presigned URL signature does not match: the URL was changed or not issued by this cloud';
  }

  #checkScope(credential: string, amzDate: string): string | undefined {
    const signedAt = parseAmzDate(amzDate);
    if (signedAt === undefined) return 'invalid X-Amz-Date: expected e.g. 20240506T123456Z';
    const slash = credential.indexOf('/');
    if (slash < 0 || credential.slice(0, slash) !== this.credentials.accessKeyId)
      return 'unknown access key: use the local cloud credentials (<data>/credentials.json)';
    if (credential.slice(slash + 1) !== this.#keys.scope(amzDate.slice(0, 8)))
      return `credential scope must be ${this.#keys.scope(amzDate.slice(0, 8))}`;
    return undefined;
  }

  #checkSkew(amzDate: string): string | undefined {
    const signedAt = parseAmzDate(amzDate)!;
    if (Math.abs(this.now() - signedAt) <= MAX_SKEW_MS) return undefined;
    return `Signature expired: ${amzDate} is more than 15 min from the server time ${formatAmzDate(this.now())}`;
  }

  #compare(signature: string, amzDate: string, canonical: string): string | undefined {
    const expected = this.#keys.sign(
      this.credentials.secretAccessKey,
      amzDate.slice(0, 8),
      amzDate,
      canonical,
    );
    const given = Buffer.from(signature);
    const wanted = Buffer.from(expected);
    if (given.length === wanted.length && timingSafeEqual(given, wanted)) return undefined;
    return 'signature does not match: sign with the local cloud credentials';
  }
}

/** What verification reads of a request (node:http's IncomingMessage has all of it). */
export interface SignedRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

/** AWS allows 15 minutes between the signer's clock and the server's. */
const MAX_SKEW_MS = 15 * 60_000;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function parseAmzDate(value: string): number | undefined {
  const m = AMZ_DATE.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(ms) ? undefined : ms;
}

function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

function splitUrl(url: string | undefined): { path: string; query: string } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

/** RFC 3986 escaping as SigV4 wants it: unreserved characters stay, the rest is %XX of UTF-8. */
function rfc3986(value: string, keepSlash: boolean): string {
  const out = encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return keepSlash ? out.replace(/%2F/g, '/') : out;
}

function decode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** S3 signs the path escaped once; decoding and escaping again gives that form whatever the client sent. */
function canonicalUri(path: string): string | undefined {
  const decoded = decode(path);
  return decoded === undefined ? undefined : rfc3986(decoded, true);
}

function parseQuery(query: string): [string, string][] {
  const pairs: [string, string][] = [];
  if (query === '') return pairs;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq)) ?? part;
    const value = decode(eq < 0 ? '' : part.slice(eq + 1)) ?? '';
    pairs.push([name, value]);
  }
  return pairs;
}

function canonicalQuery(query: string, presigned: boolean): string {
  const pairs = parseQuery(query)
    .filter(([name]) => !(presigned && name === 'X-Amz-Signature'))
    .map(([name, value]) => [rfc3986(name, false), rfc3986(value, false)] as const);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

function canonicalHeaders(headers: IncomingHttpHeaders, names: readonly string[]): string {
  let out = '';
  for (const name of names) {
    const value = headers[name];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    out += `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
  }
  return out;
}
