/**
 * The update script's output: its stdout and stderr go to files rather than pipes (a script writing
 * to a pipe dies of SIGPIPE at its next line once the agent is gone), read back in bounded slices and
 * split into lines. A stdout line `restart` or `exit` is the script telling the agent what the
 * update needs (see apply.ts).
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, unlinkSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export type ApplyAction = 'restart' | 'exit';
export type OutputStreamName = 'stdout' | 'stderr';

/** Bytes of a script's output read per poll: a script printing faster cannot hold the event loop. */
const OUTPUT_READ_BYTES = 256 * 1024;
/** Past this many unread bytes, the reader skips to the newest output (and says so in the log). */
const OUTPUT_MAX_LAG = 4 << 20;
/** Once read up to this size, an output file is emptied: a chatty script cannot fill the disk. */
const OUTPUT_MAX_FILE = 4 << 20;

interface OutputStream {
  feed(chunk: Buffer): void;
  /** `bytes` of output were skipped before the next feed. */
  gap(bytes: number): void;
}

/** Splits one stream's chunks into trimmed, non-empty lines for `take`. */
export class LineSplitter implements OutputStream {
  private rest = '';
  // A character split between two reads is decoded whole.
  private readonly decoder = new StringDecoder('utf8');
  /** After a gap, output up to the next newline is a fragment, not a line. */
  private resync = false;

  constructor(
    private readonly take: (line: string) => void,
    /** Where a gap is logged. */
    private readonly note: (text: string) => void,
  ) {}

  /**
   * Output was skipped: the partial line before the gap and the one after it are fragments, not
   * lines (a fragment could read `exit`), so both are dropped and the gap is only logged.
   */
  gap(bytes: number): void {
    this.rest = '';
    this.decoder.end();
    this.resync = true;
    this.note(`[${bytes} bytes of output skipped]`);
  }

  feed(chunk: Buffer): void {
    if (this.resync) {
      const newline = chunk.indexOf(10);
      if (newline < 0) return;
      this.resync = false;
      chunk = chunk.subarray(newline + 1);
    }
    const parts = (this.rest + this.decoder.write(chunk)).split('\n');
    this.rest = parts.pop()!.slice(-4096);
    for (const raw of parts) this.emit(raw);
  }

  /** The last line may lack its newline (`printf 1.2.3`, a VERSION file without one). */
  flush(): void {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    this.emit(last);
  }

  private emit(raw: string): void {
    const line = raw.trim();
    if (line) this.take(line);
  }
}

interface OutputFile {
  /** The agent's write end, kept to empty the file (the child's copy appends: O_APPEND). */
  readonly writeFd: number;
  readonly readFd: number;
  position: number;
}

/**
 * The output files of a script. Each run gets new files (the old ones unlinked first), so a
 * background process of an earlier script, still holding its file, cannot write into this run's.
 */
export class OutputFiles {
  private readonly files: OutputFile[] = [];
  private readonly buffer = Buffer.allocUnsafe(OUTPUT_READ_BYTES);

  constructor(paths: { readonly stdout: string; readonly stderr: string }) {
    try {
      for (const path of [paths.stdout, paths.stderr]) this.files.push(openOutputFile(path));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get stdoutFd(): number {
    return this.files[0]!.writeFd;
  }

  get stderrFd(): number {
    return this.files[1]!.writeFd;
  }

  /** Hands what was written since the last call (at most OUTPUT_READ_BYTES a file) to the streams. */
  read(streams: readonly [OutputStream, OutputStream]): number {
    let total = 0;
    this.files.forEach((file, i) => {
      const stream = streams[i]!;
      const { size } = fstatSync(file.readFd);
      if (size < file.position) file.position = 0;
      if (size - file.position > OUTPUT_MAX_LAG) {
        const skipped = size - OUTPUT_READ_BYTES - file.position;
        file.position += skipped;
        stream.gap(skipped);
      }
      const n = readSync(file.readFd, this.buffer, 0, OUTPUT_READ_BYTES, file.position);
      file.position += n;
      total += n;
      if (n > 0) stream.feed(this.buffer.subarray(0, n));
      // Emptied only when nothing arrived since the read: the script appends (O_APPEND) from 0 on.
      if (file.position >= OUTPUT_MAX_FILE && fstatSync(file.readFd).size === file.position) {
        ftruncateSync(file.writeFd, 0);
        file.position = 0;
      }
    });
    return total;
  }

  /** Reads what is left once the script is over (bounded: a background child may still be writing). */
  drain(streams: readonly [OutputStream, OutputStream]): void {
    for (let round = 0; round < 32 && this.read(streams) > 0; round++) {}
  }

  close(): void {
    for (const file of this.files.splice(0)) {
      closeSync(file.writeFd);
      closeSync(file.readFd);
    }
  }
}

function openOutputFile(path: string): OutputFile {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const writeFd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND | constants.O_NOFOLLOW,
    0o600,
  );
  let readFd: number | undefined;
  try {
    readFd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const written = fstatSync(writeFd);
    const read = fstatSync(readFd);
    if (written.ino !== read.ino || written.dev !== read.dev) {
      throw Object.assign(new Error(`${path} was replaced while being opened`), { path, code: 'ECHANGED' });
    }
    return { writeFd, readFd, position: 0 };
  } catch (err) {
    closeSync(writeFd);
    if (readFd !== undefined) closeSync(readFd);
    throw err;
  }
}

/**
 * The last `restart` or `exit` line of a script's output file (its last OUTPUT_MAX_FILE bytes), as
 * runScript would have taken it. With `empty`, for a script that outlived the agent that read its
 * output: only a file grown past OUTPUT_MAX_FILE is read, then emptied (the script appends: O_APPEND).
 */
export function scriptActionIn(path: string, options: { empty?: boolean } = {}): ApplyAction | undefined {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const { size } = fstatSync(fd);
      if (options.empty && size <= OUTPUT_MAX_FILE) return undefined;
      const length = Math.min(size, OUTPUT_MAX_FILE);
      const buf = Buffer.alloc(length);
      const n = readSync(fd, buf, 0, length, size - length);
      text = buf.subarray(0, n).toString('utf8');
      // Read from the middle of the file, the first line is a fragment.
      if (length < size) text = text.slice(text.indexOf('\n') + 1);
      if (options.empty && fstatSync(fd).size === size) ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  let action: ApplyAction | undefined;
  for (const line of text.split('\n')) action = actionOf(line.trim()) ?? action;
  return action;
}

/** A stdout line `restart` or `exit` (as in Ioto) is the script telling the agent what the update needs. */
export function actionOf(line: string): ApplyAction | undefined {
  return line === 'restart' || line === 'exit' ? line : undefined;
}
