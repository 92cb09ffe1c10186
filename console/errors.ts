/**
 * Errors of the console's own HTTP layer (access refused, a malformed request, an unknown route).
 * Errors of the operations themselves are admin/'s AdminErrors; both carry the HTTP status, and
 * console/respond.ts turns either into the one-line answer.
 */
export class ConsoleError extends Error {
  override readonly name: string = 'ConsoleError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request lacks the console's cookie or carries a wrong secret. */
export class UnauthorizedError extends ConsoleError {
  override readonly name = 'UnauthorizedError';
  constructor(message: string) {
    super(401, message);
  }
}

/** Wrong Host (DNS rebinding) or a mutation from another origin. */
export class ForbiddenError extends ConsoleError {
  override readonly name = 'ForbiddenError';
  constructor(message: string) {
    super(403, message);
  }
}

/** A request the API cannot read: bad JSON, a missing or mistyped field, a body too large. */
export class BadRequestError extends ConsoleError {
  override readonly name = 'BadRequestError';
  constructor(message: string, status = 400) {
    super(status, message);
  }
}

export class RouteNotFoundError extends ConsoleError {
  override readonly name = 'RouteNotFoundError';
  constructor(method: string, path: string) {
    super(404, `No route ${method} ${path}: see the console's API in console/routes.ts`);
  }
}

/** A cloud route names a cloud this console does not serve. */
export class CloudNotFoundError extends ConsoleError {
  override readonly name = 'CloudNotFoundError';
  constructor(cloud: string, served: readonly string[]) {
    super(404, `Unknown cloud "${cloud}": this console serves ${served.join(', ')}`);
  }
}

export class MethodNotAllowedError extends ConsoleError {
  override readonly name = 'MethodNotAllowedError';
  constructor(method: string, path: string) {
    super(405, `${method} is not allowed on ${path}`);
  }
}
