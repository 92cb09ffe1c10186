/**
 * The seal of the embedded store (DESIGN §5). dynalite and s3rver check no signatures (s3rver checks
 * a presigned URL's expiry, not its signature), so every request passes a gate first:
 * - S3: a GET/HEAD with a valid, unexpired presigned URL (what devices get); anything else needs a
 *   header signature made with the local cloud's credentials.
 * - DynamoDB: a header signature made with the local cloud's credentials, body hash included.
 * Refusals are 403 with a one-line reason, and the connection is closed without reading the body.
 * No CORS: the Origin header is dropped before the servers see it, and preflights are refused.
 * The gates run in the servers' own request handlers: no proxy hop, image bodies stream as before.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { SignatureVerifier } from './sigv4-verify.ts';

/** dynalite refuses larger requests itself; the gate buffers no more than that. */
const MAX_DYNAMO_BODY = 16 * 1024 * 1024;

function refuse(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.shouldKeepAlive = false;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
  // Do not wait for (or read) a body the client may still be sending.
  res.once('finish', () => res.req.socket.destroySoon());
}

function refuseS3(res: ServerResponse, reason: string): void {
  const code = reason.startsWith('presigned URL has expired') ? 'AccessDenied' : 'SignatureDoesNotMatch';
  const text = reason.replace(/[<>&]/g, ' ');
  refuse(res, 403, 'application/xml', `<Error><Code>${code}</Code><Message>${text}</Message></Error>\n`);
}

function refuseDynamo(res: ServerResponse, reason: string): void {
  const type = reason.startsWith('unknown access key')
    ? 'UnrecognizedClientException'
    : reason.startsWith('this store needs')
      ? 'MissingAuthenticationTokenException'
      : 'InvalidSignatureException';
  const body = JSON.stringify({ __type: `com.amazon.coral.service#${type}`, message: reason });
  refuse(res, 403, 'application/x-amz-json-1.0', `${body}\n`);
}

function withoutOrigin(req: IncomingMessage): void {
  delete req.headers.origin;
}

/**
 * Wraps s3rver's request handler. `publicHosts`: Host values presigned URLs are signed for besides
 * the request's own (the --s3-public-url address behind a proxy).
 */
export function sealS3(
  handler: RequestListener,
  verifier: SignatureVerifier,
  publicHosts: readonly string[],
): RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    const presigned = url.includes('X-Amz-Algorithm=') || url.includes('X-Amz-Signature=');
    let reason: string | undefined;
    if (req.method === 'OPTIONS') reason = 'CORS requests are not served';
    else if (presigned && req.headers.authorization !== undefined)
      reason = 'use either a presigned URL or an Authorization header, not both';
    else if (presigned && req.method !== 'GET' && req.method !== 'HEAD')
      reason = 'presigned URLs allow GET and HEAD only';
    else if (presigned) reason = verifier.verifyPresigned(req, publicHosts);
    else {
      const declared = req.headers['x-amz-content-sha256'];
      reason =
        typeof declared === 'string'
          ? verifier.verifyHeader(req, declared)
          : req.headers.authorization === undefined
            ? 'this store needs a presigned URL or requests signed with the local cloud credentials'
            : 'missing x-amz-content-sha256 header';
    }
    if (reason !== undefined) {
      refuseS3(res, reason);
      return;
    }
    withoutOrigin(req);
    // Verified here: s3rver, which knows only its built-in key, sees an anonymous request.
    delete req.headers.authorization;
    if (presigned) req.url = withoutSignature(url);
    handler(req, res);
  };
}

/** The URL without its SigV4 query parameters (X-Amz-*, and x-id, which the SDK adds to presigns). */
function withoutSignature(url: string): string {
  const q = url.indexOf('?');
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((p) => !/^(X-Amz-|x-id=)/i.test(p));
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`;
}

/**
 * Wraps dynalite's request handler: reads the body (to hash it), verifies, then hands dynalite a
 * replay of the request, since the original stream has been consumed.
 */
export function sealDynamo(handler: RequestListener, verifier: SignatureVerifier): RequestListener {
  return (req, res) => {
    const early =
      req.method === 'OPTIONS'
        ? 'CORS requests are not served'
        : req.method !== 'POST'
          ? 'this store needs requests signed with the local cloud credentials'
          : Number(req.headers['content-length']) > MAX_DYNAMO_BODY
            ? `request body over ${MAX_DYNAMO_BODY} bytes`
            : verifier.verifyCredential(req);
    if (early !== undefined) {
      refuseDynamo(res, early);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DYNAMO_BODY) {
        req.removeAllListeners('data');
        refuseDynamo(res, `request body over ${MAX_DYNAMO_BODY} bytes`);
        return;
      }
      hash.update(chunk);
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_DYNAMO_BODY) return;
      const reason = verifier.verifyHeader(req, hash.digest('hex'));
      if (reason !== undefined) {
        refuseDynamo(res, reason);
        return;
      }
      withoutOrigin(req);
      handler(replay(req, chunks), res);
    });
    // An aborted request has no one left to answer.
    req.on('error', () => req.socket.destroy());
  };
}

/** A request whose body is `chunks`, with the original's method, URL and headers. */
function replay(req: IncomingMessage, chunks: Buffer[]): IncomingMessage {
  const body = Readable.from(chunks, { objectMode: false });
  return Object.assign(body, {
    method: req.method,
    url: req.url,
    headers: req.headers,
    socket: req.socket,
  }) as unknown as IncomingMessage;
}

/** Installs `seal` around `server`'s request listener (before it listens, so no request slips past). */
export function sealServer(server: Server, seal: (handler: RequestListener) => RequestListener): void {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length !== 1) throw new Error(`expected one request listener, found ${listeners.length}`);
  server.removeAllListeners('request');
  server.on('request', seal(listeners[0]!));
}
