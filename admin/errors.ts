/**
 * Errors of the admin operations. Every operation of admin/ fails with an AdminError: a one-line
 * message a builder can act on, an HTTP status for the console's API, optional detail lines (a
 * policy's caret excerpt) and the `cause` it came from. `toAdminError` is the one place that turns
 * anything thrown below (core validation, the store adapter, the S3 adapter, AWS credentials) into
 * one of these.
 */
import { PolicyError, ValidationError } from '#core/errors.ts';
import { StoreUnavailableError } from '#functions/errors.ts';

/** Where a cloud's DynamoDB table lives, for messages about it. */
export interface StoreDescription {
  /** e.g. `DynamoDB at http://127.0.0.1:4567` or `DynamoDB table updraft-prod in eu-west-1`. */
  readonly where: string;
  /** What to do when it cannot be reached. */
  readonly hint: string;
}

export class AdminError extends Error {
  override readonly name: string = 'AdminError';
  /** The answer the console's API gives for this error. */
  readonly status: number = 500;
  constructor(
    message: string,
    /** Lines shown under the message, e.g. a policy excerpt with a caret. */
    readonly detail?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The base of one kind of AdminError: its name and the status the console answers it with. */
function kind<Name extends string>(name: Name, status: number) {
  return class extends AdminError {
    override readonly name: Name = name;
    override readonly status: number = status;
  };
}

/** Input that breaks a rule: a flag, a file, a version; the message says what to fix. */
export class InvalidInputError extends kind('InvalidInputError', 400) {}

/** The update or token named does not exist. */
export class NotFoundError extends kind('NotFoundError', 404) {}

/** The request clashes with what exists: a version published or being published, a file in the way. */
export class ConflictError extends kind('ConflictError', 409) {}

/** A policy that does not compile; `column` is 1-based and the detail is the caret excerpt. */
export class InvalidPolicyError extends kind('InvalidPolicyError', 400) {
  constructor(
    readonly reason: string,
    readonly column: number,
    excerpt: string,
    options?: ErrorOptions,
  ) {
    super(`Invalid policy: ${oneLine(reason)} at column ${column}`, excerpt, options);
  }
}

/** An S3 request failed; the message names the endpoint or bucket and what to do. */
export class ImageStoreError extends kind('ImageStoreError', 502) {}

/** The cloud's DynamoDB table cannot be reached or throttles us. */
export class StoreUnreachableError extends kind('StoreUnreachableError', 503) {}

/** AWS refused the builder's credentials. */
export class CloudAccessError extends kind('CloudAccessError', 502) {}

/**
 * A publish step failed after validation. The message names the step and says what was removed
 * (or what remains); the status is the cause's.
 */
export class PublishError extends kind('PublishError', 500) {
  override readonly status: number;
  constructor(message: string, cause: AdminError) {
    super(message, undefined, { cause });
    this.status = cause.status;
  }
}

/**
 * AWS error types that mean the credentials are missing or refused. They arrive as the `name` of
 * SDK errors (credential providers) and of the DynamoDB adapter's errors alike: the name is their type.
 */
const CREDENTIAL_ERRORS =
  /^(CredentialsProviderError|UnrecognizedClientException|InvalidClientTokenId|ExpiredToken(Exception)?|AccessDenied(Exception)?|InvalidSignatureException|UnauthorizedException)$/;

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Any error as an AdminError. `store` describes the table the operation talked to, so an
 * unreachable store is named precisely. Errors of unknown kinds keep their name in the message.
 */
export function toAdminError(err: unknown, store?: StoreDescription): AdminError {
  if (err instanceof AdminError) return err;
  const cause = { cause: err };
  if (err instanceof PolicyError) return new InvalidPolicyError(err.reason, err.column, err.excerpt, cause);
  if (err instanceof ValidationError) return new InvalidInputError(oneLine(err.message), undefined, cause);
  if (err instanceof StoreUnavailableError) {
    const message = store
      ? `${store.where} unreachable or unavailable: ${store.hint}`
      : 'DynamoDB unreachable or unavailable';
    return new StoreUnreachableError(message, undefined, cause);
  }
  if (!(err instanceof Error)) return new AdminError(oneLine(String(err)), undefined, cause);
  if (CREDENTIAL_ERRORS.test(err.name)) {
    const message = `AWS refused the request (${err.name}: ${oneLine(err.message)}): check your AWS credentials`;
    return new CloudAccessError(message, undefined, cause);
  }
  const prefix = err.name === 'Error' ? '' : `${err.name}: `;
  return new AdminError(`${prefix}${oneLine(err.message)}`, undefined, cause);
}

/** Runs one admin operation so that whatever it throws is an AdminError naming `store`. */
export async function adminOperation<T>(
  store: StoreDescription | undefined,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toAdminError(err, store);
  }
}
