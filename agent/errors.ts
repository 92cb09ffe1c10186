/** Errors of the device agent. Each carries what the CLI needs to print one line and pick an exit code. */

/** A configuration file breaks a rule; the message names the file, the key and what to fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly key: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(key ? `${file}: ${key}: ${problem}` : `${file}: ${problem}`, options);
  }
}

/** The device cloud answered with a non-200 status; `message` is its one-line body. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    message: string,
    /** Seconds from the `Retry-After` header of a 429 or 503, when the server sent one. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** The network failed (refused, reset, timed out) or the server broke the protocol. Worth retrying. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
}

/**
 * The server's answer means this image URL will not work again (expired presigned URL, deleted
 * object, a refused redirect): not retried within the download; a new checkin may bring another URL.
 */
export class UrlRefusedError extends TransientError {}

/** The image cannot be downloaded as offered and retrying will not help (oversize answer, disk full). */
export class DownloadRefusedError extends Error {
  override readonly name = 'DownloadRefusedError';
}

/** The image or its offer failed verification: checksum, signature or version rule. Nothing is applied. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

/** The apply step (the update script or a `device:update` listener) did not apply the update. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
}

/** Another agent process holds the state directory. */
export class StateLockedError extends Error {
  override readonly name = 'StateLockedError';
}

/** The state directory cannot be created, read or locked (a file in the way, no permission). */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
  constructor(
    readonly dir: string,
    /** What is wrong, without the directory: the CLI names it as the user gave it. */
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`State directory ${dir}: ${problem}`, options);
  }
}

/** `err` as one line of text, for logs and reports. */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > 1000 ? `${line.slice(0, 999)}…` : line;
}
