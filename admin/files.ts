/** Local files an admin operation reads for the builder: signing keys, device files. */
import { readFileSync } from 'node:fs';
import { ValidationError } from '#core/errors.ts';

/** How to name a file that is missing, or that cannot be read (the reason follows). */
export interface FileMessages {
  readonly missing: string;
  readonly unreadable: string;
}

/** Reads a UTF-8 file; a failure is a one-line ValidationError saying which file and why. */
export function readLocalFile(file: string, messages: FileMessages): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT' ? messages.missing : `${messages.unreadable}: ${(err as Error).message}`;
    throw new ValidationError(message, { cause: err });
  }
}
