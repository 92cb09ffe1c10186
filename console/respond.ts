/**
 * How the console answers: security headers on every response, JSON bodies, and the one place
 * where any error becomes a status and a one-line message. Errors below 500 are the caller's to
 * fix and are shown as they are; 5xx answers are generic and the cause goes to the log.
 */
import type { ServerResponse } from 'node:http';
import { AdminError, InvalidPolicyError } from '#admin/index.ts';
import type { Logger } from '#functions/log.ts';
import { ConsoleError } from './errors.ts';

/** Everything the page loads comes from this server; nothing may frame it. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** The errors whose status and message are meant for the page: admin/'s and the console's own. */
function statusOf(err: unknown): number {
  if (err instanceof AdminError || err instanceof ConsoleError) {
    return err.status >= 400 && err.status <= 599 ? err.status : 500;
  }
  return 500;
}

const GENERIC_5XX: Readonly<Record<number, string>> = {
  502: "The cloud's image store or AWS refused the request: see the console's log",
  503: "The cloud's table cannot be reached: see the console's log",
};

export interface ErrorAnswer {
  readonly status: number;
  readonly body: { readonly error: string; readonly column?: number };
}

/** The status and body for anything thrown while handling a request. */
export function errorAnswer(err: unknown, log: Logger): ErrorAnswer {
  const status = statusOf(err);
  if (status >= 500) {
    log.error('console request failed', { error: err });
    return { status, body: { error: GENERIC_5XX[status] ?? "Internal error: see the console's log" } };
  }
  const error = (err as Error).message.replace(/\s*\n\s*/g, ' ').trim();
  return { status, body: err instanceof InvalidPolicyError ? { error, column: err.column } : { error } };
}

export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Readonly<Record<string, string>>,
): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'Content-Length': String(bytes.length) });
  res.end(bytes);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value)}\n`, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}

/** Pages and API alike answer errors in one line: JSON under /api/, plain text elsewhere. */
export function sendError(res: ServerResponse, path: string, answer: ErrorAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (path.startsWith('/api/')) {
    sendJson(res, answer.status, answer.body);
    return;
  }
  send(res, answer.status, `${answer.body.error}\n`, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}
