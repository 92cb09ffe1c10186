/**
 * How the console answers: security headers on every response, JSON bodies, and the one place
 * where any error becomes a status and a one-line message. Errors below 500 are the caller's to
 * fix and are shown as they are; 5xx answers are generic and the cause goes to the log.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '#functions/log.ts';

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

/** An error that says which HTTP status it stands for (AdminError and ConsoleError both do). */
interface StatusError extends Error {
  readonly status: number;
  /** InvalidPolicyError: the 1-based column the page marks. */
  readonly column?: number;
}

function hasStatus(err: unknown): err is StatusError {
  return (
    err instanceof Error &&
    typeof (err as Partial<StatusError>).status === 'number' &&
    Number.isInteger((err as StatusError).status)
  );
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
  const status = hasStatus(err) && err.status >= 400 && err.status <= 599 ? err.status : 500;
  if (status >= 500) {
    log.error('console request failed', { error: err });
    return { status, body: { error: GENERIC_5XX[status] ?? "Internal error: see the console's log" } };
  }
  const e = err as StatusError;
  const error = e.message.replace(/\s*\n\s*/g, ' ').trim();
  return { status, body: typeof e.column === 'number' ? { error, column: e.column } : { error } };
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
