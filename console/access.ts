/**
 * Who may talk to the console (DESIGN §11), as one check run before every request:
 *   - the Host header must name this listener (a DNS-rebinding page names its own domain);
 *   - a request carrying `?secret=` (the URL printed at start) trades it for an HttpOnly,
 *     SameSite=Strict cookie and is redirected to the page without it;
 *   - every other request must carry that cookie (compared in constant time);
 *   - every mutation must come from the console's own origin (Origin header), so another page
 *     in the same browser cannot post to it even when the browser would attach the cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ForbiddenError, UnauthorizedError } from './errors.ts';

export interface Listener {
  /** The address the listener is bound to, as given (127.0.0.1, ::1, localhost, a name). */
  readonly host: string;
  readonly port: number;
}

/** What the access check decided: go on, or redirect to strip the secret from the URL. */
export type AccessDecision =
  | { readonly kind: 'allow' }
  | { readonly kind: 'exchange'; readonly location: string; readonly cookie: string };

const SAFE_METHODS = new Set(['GET', 'HEAD']);
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** A new random secret: 32 bytes, URL-safe. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** host:port as a Host header or an origin writes it (IPv6 in brackets). */
function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The Host values that name this listener; a loopback listener also answers to localhost. */
export function allowedHosts({ host, port }: Listener): Set<string> {
  const hosts = new Set([authority(host, port)]);
  if (LOOPBACK.test(host)) for (const h of ['127.0.0.1', 'localhost', '::1']) hosts.add(authority(h, port));
  return hosts;
}

/** The console's URL with its secret, as printed at start. */
export function consoleUrl({ host, port }: Listener, secret: string): string {
  return `http://${authority(host, port)}/?secret=${secret}`;
}

/** Compares digests, so the time taken depends on neither the secret's length nor its content. */
function sameSecret(given: string, secret: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class Access {
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;
  /** Cookies are not scoped by port: the name carries it so two consoles keep their own. */
  readonly cookieName: string;

  constructor(
    listener: Listener,
    private readonly secret: string,
  ) {
    this.hosts = allowedHosts(listener);
    this.origins = new Set([...this.hosts].map((h) => `http://${h}`));
    this.cookieName = `updraft-console-${listener.port}`;
  }

  /** Decides on one request; throws a ForbiddenError or UnauthorizedError when refused. */
  check(req: IncomingMessage, url: Readonly<URL>): AccessDecision {
    const host = req.headers.host ?? '';
    if (!this.hosts.has(host)) {
      throw new ForbiddenError(`Host "${host}" is not this console's address: open the URL printed at start`);
    }
    const method = req.method ?? 'GET';
    if (!SAFE_METHODS.has(method)) {
      const origin = req.headers.origin;
      if (origin === undefined || !this.origins.has(origin)) {
        throw new ForbiddenError(
          `${method} from origin ${origin ?? '(none)'} refused: use the console's own page`,
        );
      }
    }
    const offered = url.searchParams.get('secret');
    if (offered !== null && SAFE_METHODS.has(method)) {
      if (!sameSecret(offered, this.secret)) {
        throw new UnauthorizedError('Wrong console secret: open the URL printed at start');
      }
      // Always to the page itself: a path taken from the request could name another host ('/.//x').
      return { kind: 'exchange', location: '/', cookie: this.cookie() };
    }
    const cookie = cookieValue(req.headers.cookie, this.cookieName);
    if (cookie === undefined) {
      throw new UnauthorizedError(
        'Not signed in to the console: open the URL with the secret printed at start',
      );
    }
    if (!sameSecret(cookie, this.secret)) {
      throw new UnauthorizedError('Console session expired: open the URL with the secret printed at start');
    }
    return { kind: 'allow' };
  }

  private cookie(): string {
    return `${this.cookieName}=${this.secret}; HttpOnly; SameSite=Strict; Path=/`;
  }
}
