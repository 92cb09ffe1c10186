/**
 * Errors of the builder CLI. Every failure ends as one line `updraft: <message>` on stderr and exit
 * code 1; `errorLine` is the one place that turns any error into that line.
 */
import { PolicyError, ValidationError } from '#core/errors.ts';

/** A failure the user can fix; `detail` lines (e.g. a policy excerpt) are printed under the message. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    readonly detail?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Wrong flags or arguments; the message says which and how to get help. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
}

/** The update named on the command line does not exist. */
export class NotFoundError extends CliError {
  override readonly name = 'NotFoundError';
}

/** An S3 request failed; the message names the endpoint or bucket and what to do. */
export class ImageStoreError extends CliError {
  override readonly name = 'ImageStoreError';
}

/** A publish step failed after validation; what it had written was removed (or the message says what remains). */
export class PublishError extends CliError {
  override readonly name = 'PublishError';
}

/** Where a cloud's DynamoDB table lives, for messages about it. */
export interface StoreDescription {
  /** e.g. `DynamoDB at http://127.0.0.1:4567` or `DynamoDB table updraft-prod in eu-west-1`. */
  readonly where: string;
  /** What to do when it cannot be reached. */
  readonly hint: string;
}

const CREDENTIAL_ERRORS =
  /^(CredentialsProviderError|UnrecognizedClientException|InvalidClientTokenId|ExpiredToken(Exception)?|AccessDenied(Exception)?|InvalidSignatureException|UnauthorizedException)$/;

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * The message line and optional detail lines for any error. `store` describes the DynamoDB table the
 * command talked to, so an unreachable store is named precisely.
 */
export function errorLine(err: unknown, store?: StoreDescription): { message: string; detail?: string } {
  if (err instanceof CliError)
    return { message: oneLine(err.message), ...(err.detail ? { detail: err.detail } : {}) };
  if (err instanceof PolicyError) {
    return { message: `Invalid policy: ${oneLine(err.reason)} at column ${err.column}`, detail: err.excerpt };
  }
  if (err instanceof ValidationError) return { message: oneLine(err.message) };
  if (err instanceof Error && err.name === 'StoreUnavailableError') {
    return {
      message: store
        ? `${store.where} unreachable or unavailable: ${store.hint}`
        : 'DynamoDB unreachable or unavailable',
    };
  }
  if (err instanceof Error && CREDENTIAL_ERRORS.test(err.name)) {
    return {
      message: `AWS refused the request (${err.name}: ${oneLine(err.message)}): check your AWS credentials`,
    };
  }
  if (err instanceof Error)
    return { message: `${err.name === 'Error' ? '' : `${err.name}: `}${oneLine(err.message)}` };
  return { message: oneLine(String(err)) };
}
