/**
 * Checks the image download (download.ts) makes around its transfer: free disk space before it,
 * the Content-Range of a resumed answer, the error code in a refusal's body, and which write
 * failures mean the disk is full.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DownloadRefusedError, TransientError } from './errors.ts';

const MiB = 1 << 20;

/** Refuses a download the file system has no room for. */
export async function ensureSpace(file: string, needed: number): Promise<void> {
  if (needed <= 0) return;
  let free: number;
  try {
    const fs = await statfs(dirname(file));
    free = fs.bavail * fs.bsize;
  } catch {
    // statfs is missing on some filesystems; ENOSPC while writing still stops the download.
    return;
  }
  if (free < needed) {
    throw new DownloadRefusedError(
      `Not enough disk space for the image: need ${mib(needed)} MiB, ${mib(free)} MiB free in ${dirname(file)}`,
    );
  }
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** A non-success answer worth retrying; `retryAfter` in seconds from a 429 or 503. */
export class StatusError extends TransientError {
  constructor(
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** Bytes of an error answer's body read for its error code. */
export const ERROR_BODY_BYTES = 4096;

/** The `<Code>` of an S3 error body (`AccessDenied`, `NoSuchKey`, …), if it has one. */
export function s3ErrorCode(body: string): string | undefined {
  return /<Code>\s*([A-Za-z0-9._-]{1,64})\s*<\/Code>/.exec(body)?.[1];
}

export function diskError(err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DownloadRefusedError('Disk full while writing the image', { cause: err });
  }
  return err as Error;
}

export function checkContentRange(header: string | undefined, from: number, size: number): void {
  const m = header ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!m) throw new TransientError(`Bad Content-Range ${JSON.stringify(header ?? '')} in a 206 answer`);
  if (Number(m[1]) !== from) {
    throw new TransientError(`The server resumed at byte ${m[1]}, asked for ${from}`);
  }
  if (m[3] !== '*' && Number(m[3]) !== size) {
    throw new DownloadRefusedError(`The image has ${m[3]} bytes, the offer says ${size}`);
  }
}
