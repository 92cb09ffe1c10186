/** Errors of the pure domain. The device cloud maps them to HTTP statuses in functions/errors.ts. */

/** Input that breaks a rule of DESIGN §2; the message says what to fix. */
export class ValidationError extends Error {
  override readonly name: string = 'ValidationError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A request body over its size limit. */
export class PayloadTooLargeError extends ValidationError {
  override readonly name = 'PayloadTooLargeError';
}

/** A policy that does not parse or breaks a limit. `column` is 1-based; `excerpt` shows a caret under it. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    /** The reason alone, without position (e.g. `Unknown function "eval"`). */
    readonly reason: string,
    readonly column: number,
    readonly excerpt: string,
  ) {
    super(`${reason} at column ${column}\n${excerpt}`);
  }
}
