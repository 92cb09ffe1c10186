/**
 * A small route table: `METHOD /api/path/:param` → handler. Handlers return the JSON to send
 * (status 200, or the status they give) and throw AdminErrors or ConsoleErrors, which the server
 * turns into answers in one place (console/respond.ts).
 */
import type { IncomingMessage } from 'node:http';
import { BadRequestError, MethodNotAllowedError, RouteNotFoundError } from './errors.ts';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
}

/** A handler's answer: a JSON value (200), or a status with it. */
export type RouteAnswer = { readonly status: number; readonly body: unknown };

export interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  readonly path: string;
  handle(context: RouteContext): Promise<RouteAnswer>;
}

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((segment) => {
      if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(segment.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`), names };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequestError(`Malformed URL segment "${segment}"`);
  }
}

export class Router {
  private readonly routes: readonly CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.routes = routes.map(compile);
  }

  /** The route for a request and its parameters; throws 404 or 405 when none fits. */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = decode(m[i + 1] ?? '');
      });
      return { route, params };
    }
    if (pathMatched) throw new MethodNotAllowedError(method, path);
    throw new RouteNotFoundError(method, path);
  }

  /** Method and path of every route, for tests and docs. */
  list(): { method: string; path: string }[] {
    return this.routes.map(({ method, path }) => ({ method, path }));
  }
}

export const ok = (body: unknown): RouteAnswer => ({ status: 200, body });
export const created = (body: unknown): RouteAnswer => ({ status: 201, body });
