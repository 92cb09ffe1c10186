/**
 * Where a published image comes from: a file (the CLI) or a stream of known size (the console's
 * HTTP upload). Either way it is checked before anything is written, and read once, hashed and
 * counted on its way to S3.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import { ValidationError } from '#core/errors.ts';

/** The image in a file: its name is the file's. */
export interface ImageFile {
  readonly file: string;
}

/** The image as a stream of `size` bytes, stored under `name` (e.g. the uploaded file's name). */
export interface ImageStream {
  readonly stream: Readable;
  readonly name: string;
  readonly size: number;
}

export type ImageSource = ImageFile | ImageStream;

/** A checked source: its size and the file name its S3 key ends with. */
export interface CheckedImage {
  readonly size: number;
  readonly name: string;
  /** How the image is named in messages. */
  readonly label: string;
}

function isFile(source: ImageSource): source is ImageFile {
  return 'file' in source;
}

/** The image file must exist, be a regular file and not be empty. */
function checkImageFile(file: string): CheckedImage {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ValidationError(`Image file not found: ${file}`);
    throw new ValidationError(`Cannot read image file ${file}: ${(err as Error).message}`);
  }
  if (!stat.isFile())
    throw new ValidationError(`Image ${file} is not a regular file: pass the image file itself`);
  if (stat.size === 0) throw new ValidationError(`Image file ${file} is empty`);
  return { size: stat.size, name: basename(file), label: file };
}

/** An uploaded image needs a plain file name (it ends the S3 key) and a whole, positive size. */
function checkImageStream({ name, size }: ImageStream): CheckedImage {
  if (!/^[A-Za-z0-9._+-]{1,128}$/.test(name) || /^\.+$/.test(name)) {
    throw new ValidationError(
      `Invalid image name ${JSON.stringify(name)}: use 1–128 characters of A-Z a-z 0-9 . _ + -`,
    );
  }
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new ValidationError(`Invalid image size ${size}: send the image's length in bytes (at least 1)`);
  }
  return { size, name, label: `uploaded image ${name}` };
}

export function checkImageSource(source: ImageSource): CheckedImage {
  return isFile(source) ? checkImageFile(source.file) : checkImageStream(source);
}

/** The image's bytes, hashed and counted on their way; `result` is read once the upload finished. */
export interface HashedImage {
  readonly body: Readable;
  result(): { sha256: string; size: number };
  /** The source's own failure (an upload cut short), when it failed. */
  sourceError(): Error | undefined;
  close(): void;
}

/**
 * Opens the source and hashes what flows through. A stream source may not send more than it
 * announced: past `size` it fails at once instead of filling the bucket.
 */
export function openImage(source: ImageSource, size: number): HashedImage {
  const hash = createHash('sha256');
  let seen = 0;
  let failure: Error | undefined;
  const capped = !isFile(source);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (capped && seen > size) {
        failure = new ValidationError(`The uploaded image is larger than the ${size} bytes announced`);
        return done(failure);
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const input = isFile(source) ? createReadStream(source.file) : source.stream;
  input.once('error', (err: Error) => {
    // The source's own failure comes first; when the upload failed first, the pipeline tears the
    // source down after the counter, and that error is the upload's, not the source's.
    if (!counter.destroyed) failure ??= err;
  });
  const body: Readable = pipeline(input, counter, () => undefined);
  return {
    body,
    result: () => ({ sha256: hash.digest('hex'), size: seen }),
    sourceError: () => failure,
    close: () => input.destroy(),
  };
}
