/**
 * Errors of the device cloud. Each HTTP error carries its status; `toResponse` in app.ts turns
 * them into one-line plain-text answers. Anything else becomes a generic 500/503 and is logged.
 */

export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class AuthenticationError extends HttpError {
  override readonly name = 'AuthenticationError';
  constructor() {
    super(401, 'Authentication failed');
  }
}

export class ForbiddenError extends HttpError {
  override readonly name = 'ForbiddenError';
  constructor(message: string) {
    super(403, message);
  }
}

export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError';
  constructor(message: string) {
    super(404, message);
  }
}

/**
 * The store (DynamoDB or S3) could not be reached or throttled us. Clients retry after
 * `retryAfter` seconds; the cause is logged, never sent.
 */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
  /** The failed write may still have been applied (the request reached the store): never resend it blindly. */
  readonly mayHaveApplied: boolean;
  constructor(
    readonly store: 'dynamodb' | 's3',
    options?: ErrorOptions & { readonly mayHaveApplied?: boolean },
  ) {
    super(`${store} unavailable`, options);
    this.mayHaveApplied = options?.mayHaveApplied ?? false;
  }
}

/**
 * DynamoDB cancelled a transaction because another one held one of its items (TransactionConflict):
 * nothing of it was applied, and sending it again with the same token is safe.
 */
export class TransactionConflictError extends StoreUnavailableError {
  override readonly name = 'TransactionConflictError';
}
