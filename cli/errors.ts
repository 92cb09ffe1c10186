/**
 * Errors of the builder CLI. Every failure ends as one line `updraft: <message>` on stderr and exit
 * code 1; `errorLine` is the one place that turns any error into that line. Failures of admin
 * operations arrive as AdminErrors (admin/errors.ts), already one line; the CLI adds its own for
 * flags and clouds.
 */
// admin/errors.ts is the part of admin's public surface (admin/index.ts re-exports it) that loads
// alone: usage errors and help answer without loading every operation.
import { oneLine, type StoreDescription, toAdminError } from '#admin/errors.ts';

// The S3 adapter (cli/s3.ts) and the cloud opener (cli/cloud.ts) take these from here.
export { ImageStoreError, type StoreDescription } from '#admin/errors.ts';

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

/**
 * The message line and optional detail lines for any error. `store` describes the DynamoDB table the
 * command talked to, so an unreachable store is named precisely.
 */
export function errorLine(err: unknown, store?: StoreDescription): { message: string; detail?: string } {
  const { message, detail } = err instanceof CliError ? err : toAdminError(err, store);
  return { message: oneLine(message), ...(detail ? { detail } : {}) };
}
