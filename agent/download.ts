/**
 * Image download: streamed into a file of the state directory (mode 0600), hashed while streaming,
 * resumed with HTTP Range after a dropped connection, bounded retries, never more bytes than the
 * offered size, bounded memory (a 64 KiB read buffer and one 256 KiB write buffer).
 *
 * Writes are synchronous, 256 KiB at a time. Measured with the bench's 256 MiB image from s3rver on
 * a 2-core machine: handing 1 MiB writes to the thread pool (four buffers in flight) ran at 239–286
 * MiB/s against 343–442 synchronously, and O_DIRECT from aligned buffers was slower still; writes of
 * 512 KiB and more cost twice the system time of 256 KiB ones (208–264 ms against 92–100 ms for the
 * whole image, likely from larger page-cache folios). A write holds the event loop for about 0.1 ms;
 * when the kernel throttles a slow disk, the download cannot go faster than the disk anyway.
 *
 * Durability: once at least 1 MiB was written and 2 s passed since the last checkpoint, the written
 * bytes are fdatasync'ed in the background, without stalling the transfer, and `onCheckpoint(offset)`
 * lets the caller persist the offset. Time, not bytes, paces checkpoints: a crash costs at most a
 * few seconds of transfer, and a fast link does not pay a forced flush every few MiB. A restart
 * truncates the file to the persisted offset (bytes after it may not have reached the disk) and
 * re-hashes that prefix, since a hash state cannot be saved.
 *
 * Redirects (up to 5, https never to http) are followed from the offered URL on every attempt, a
 * resume included, rather than resuming at the URL they led to: the offered URL is what the cloud
 * signed for this device and lives as long as the cloud said, while a redirect's target is often a
 * short-lived URL of its own (a CDN or mirror signature minted per request) that may have expired by
 * the time a dropped connection is resumed. A resume costs one small extra round trip per redirect.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkContentRange,
  diskError,
  ERROR_BODY_BYTES,
  ensureSpace,
  StatusError,
  s3ErrorCode,
} from './download-checks.ts';
import { DownloadRefusedError, errorLine, TransientError, UrlRefusedError } from './errors.ts';
import { parseRetryAfter } from './http.ts';
import { getFollowingRedirects, type ResponseHead } from './http-get.ts';
import type { ProxySettings } from './proxy.ts';

export { s3ErrorCode } from './download-checks.ts';

const MiB = 1 << 20;
/** Bytes per write (see the top of this file for why not more). */
const WRITE_BYTES = 256 * 1024;

export interface DownloadRetry {
  /** Attempts in all, resumes included. */
  readonly maxAttempts: number;
  /** Consecutive attempts that receive no byte before giving up. */
  readonly maxWithoutProgress: number;
  /** Delay after the first attempt without progress; doubles after each further one. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_DOWNLOAD_RETRY: DownloadRetry = {
  maxAttempts: 100,
  maxWithoutProgress: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
};

export interface DownloadRequest {
  readonly url: string;
  /** Offered size; a byte more is refused. */
  readonly size: number;
  /** Absolute path of the image file. */
  readonly file: string;
  /** Bytes of `file` known to be valid (from the persisted state); 0 for a fresh download. */
  readonly offset: number;
  /** An attempt with no byte for this long is cut and retried. */
  readonly stallTimeoutMs: number;
  readonly retry?: Partial<DownloadRetry>;
  readonly signal?: AbortSignal;
  /** The first `offset` bytes of the file are durable: persist `offset` to resume from it after a restart. */
  readonly onCheckpoint?: (offset: number) => void;
  readonly onProgress?: (received: number, size: number) => void;
  /** Told about each retry, for the log. */
  readonly onRetry?: (attempt: number, error: Error, offset: number) => void;
  /** `update.throttle`: a pause of this many ms after each read of up to 64 KiB. Default 0. */
  readonly throttleMs?: number;
  /** Proxies; by default this process's HTTPS_PROXY / HTTP_PROXY / NO_PROXY (proxy.ts). */
  readonly proxy?: ProxySettings;
}

export interface DownloadResult {
  /** sha256 of the whole file, lowercase hex. */
  readonly sha256: string;
  readonly attempts: number;
  /** Offsets from which a Range request resumed, for the log and the tests. */
  readonly resumedAt: readonly number[];
}

/** Progress checkpoints: at least this many new bytes written, and CHECKPOINT_MS since the last. */
const CHECKPOINT_MIN_BYTES = MiB;
const CHECKPOINT_MS = 2000;

export async function downloadImage(req: DownloadRequest): Promise<DownloadResult> {
  const retry = { ...DEFAULT_DOWNLOAD_RETRY, ...req.retry };
  // O_NOFOLLOW: a symlink planted in the state directory must not redirect the write.
  const fh = await open(req.file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    // The file may predate this process with a looser mode.
    await fh.chmod(0o600);
    const download = new ImageFile(fh, req);
    await download.resume(req.offset);
    await ensureSpace(req.file, req.size - download.received);
    const resumedAt: number[] = [];
    let attempts = 0;
    let withoutProgress = 0;
    while (download.received < req.size) {
      attempts++;
      const before = download.received;
      if (before > 0) resumedAt.push(before);
      try {
        await download.fetch();
      } catch (err) {
        await download.checkpoint(true);
        if (req.signal?.aborted) throw req.signal.reason;
        if (!(err instanceof TransientError) || err instanceof UrlRefusedError) throw err;
        const progressed = download.received > before;
        withoutProgress = progressed ? 0 : withoutProgress + 1;
        if (attempts >= retry.maxAttempts || withoutProgress >= retry.maxWithoutProgress) {
          throw new TransientError(`Download failed after ${attempts} attempts: ${errorLine(err)}`, {
            cause: err,
          });
        }
        req.onRetry?.(attempts, err, download.received);
        // A drop after progress is worth an immediate resume; a server that sends nothing is not.
        let delay = progressed
          ? 0
          : Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (withoutProgress - 1));
        const retryAfter = (err as { retryAfter?: number }).retryAfter;
        if (retryAfter !== undefined) delay = Math.max(delay, Math.min(retry.maxDelayMs, retryAfter * 1000));
        if (delay > 0) await sleep(delay, undefined, req.signal ? { signal: req.signal } : {});
      }
    }
    // Complete: written out, but not fdatasync'ed nor checkpointed. The image is verified and applied
    // from the page cache right away; after a power loss the last durable checkpoint is resumed from.
    await download.checkpoint(false);
    return { sha256: download.digest(), attempts, resumedAt };
  } finally {
    await fh.close();
  }
}

/** The file being downloaded: hash, write buffer and offsets. */
class ImageFile {
  private hash: Hash = createHash('sha256');
  private readonly buffer = Buffer.allocUnsafe(WRITE_BYTES);
  /** Bytes in `buffer`, not yet written. */
  private fill = 0;
  /** Bytes accepted: hashed and either written or in the buffer. */
  received = 0;
  /** Bytes written to the file. */
  private written = 0;
  /** At most one background fdatasync is in flight. */
  private syncDone: Promise<void> = Promise.resolve();
  private syncing = false;
  private diskFailure: Error | undefined;
  private checkpointed = 0;
  private checkpointAt = Date.now();
  /** The server answered 200 to a Range request: the body restarts at byte 0. */
  private restartPending = false;
  /** A 416 to a Range request restarted the download from byte 0; a second one refuses it. */
  private restartedAfter416 = false;
  /** A non-success answer: its body (the first bytes) is read for the error, e.g. S3's `<Code>`. */
  private failure: { head: ResponseHead; from: number; body: Buffer[]; bytes: number } | undefined;
  /** Scheme, host and port of the URL answering: named in errors, unlike the signed path and query. */
  private origin: string;

  constructor(
    private readonly fh: FileHandle,
    private readonly req: DownloadRequest,
  ) {
    this.origin = new URL(req.url).origin;
  }

  /** Keeps the first `offset` bytes (as far as the file has them) and re-hashes them. */
  async resume(offset: number): Promise<void> {
    const { size } = await this.fh.stat();
    let keep = Math.min(offset, size);
    if (keep > this.req.size) keep = 0;
    // Only when it changes the file: on ext4, truncating to 0 (even an empty file) makes close()
    // start writing back the whole image, and the next fsync of the state then waits for it.
    if (keep !== size) await this.fh.truncate(keep);
    const buf = this.buffer;
    for (let pos = 0; pos < keep; ) {
      const { bytesRead } = await this.fh.read(buf, 0, Math.min(WRITE_BYTES, keep - pos), pos);
      if (bytesRead === 0) break;
      this.hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    this.received = this.written = this.checkpointed = keep;
    // The file had fewer bytes than the persisted offset claims: a later restart must not count on them.
    if (keep < offset) this.req.onCheckpoint?.(keep);
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  /** One request from `received` on. Resolves when the file is complete; throws on any interruption. */
  async fetch(): Promise<void> {
    const from = this.received;
    this.failure = undefined;
    try {
      this.origin = new URL(this.req.url).origin;
      await getFollowingRedirects(
        this.req.url,
        {
          headers: { 'accept-encoding': 'identity', ...(from > 0 ? { range: `bytes=${from}-` } : {}) },
          idleTimeoutMs: this.req.stallTimeoutMs,
          pauseBetweenReadsMs: this.req.throttleMs ?? 0,
          ...(this.req.signal ? { signal: this.req.signal } : {}),
          ...(this.req.proxy ? { proxy: this.req.proxy } : {}),
        },
        { onHead: (head) => this.onHead(head, from), onData: (chunk) => this.onData(chunk) },
        {
          onRedirect: (_from, to) => {
            this.origin = to.origin;
          },
        },
      );
    } catch (err) {
      // An error answer whose body was cut short is still reported by its status.
      if (!this.failure || this.req.signal?.aborted) throw err;
    }
    if (this.failure) await this.refuse(this.failure);
    if (this.restartPending) await this.restart();
    if (this.received < this.req.size) {
      throw new TransientError(
        `Connection to ${this.origin} closed after ${this.received} of ${this.req.size} bytes`,
      );
    }
  }

  private onHead(head: ResponseHead, from: number): void {
    const { status, headers } = head;
    let start = from;
    if (status === 200 && from > 0) {
      // The server ignored Range: start over rather than append a second copy.
      this.restartPending = true;
      start = 0;
    } else if (status === 206) {
      checkContentRange(headers['content-range'], from, this.req.size);
    } else if (status !== 200) {
      this.failure = { head, from, body: [], bytes: 0 };
      return;
    }
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && start + length > this.req.size) {
      throw new DownloadRefusedError(
        `The server sends ${start + length} bytes, more than the offered size ${this.req.size}`,
      );
    }
  }

  /** Takes one read's worth of body; returns a promise only when it must wait for the disk. */
  private onData(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) {
      // `chunk` is a view of the read buffer: copy the little that is kept.
      const keep = Math.min(chunk.length, ERROR_BODY_BYTES - this.failure.bytes);
      this.failure.body.push(Buffer.from(chunk.subarray(0, keep)));
      this.failure.bytes += keep;
      if (this.failure.bytes >= ERROR_BODY_BYTES) throw new TransientError('Error body cut short');
      return undefined;
    }
    if (this.restartPending) {
      return this.restart().then(() => this.onData(chunk));
    }
    if (this.received + chunk.length > this.req.size) {
      throw new DownloadRefusedError(`The server sent more than the offered size of ${this.req.size} bytes`);
    }
    this.hash.update(chunk);
    this.received += chunk.length;
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.buffer, this.fill, at);
      at += n;
      this.fill += n;
      if (this.fill === WRITE_BYTES) this.flush();
    }
    this.req.onProgress?.(this.received, this.req.size);
    if (this.checkpointDue()) this.syncInBackground();
    return undefined;
  }

  /** Writes the buffer out; a disk failure (also one met by a background sync) ends the download. */
  private flush(): void {
    if (this.diskFailure) throw this.diskFailure;
    try {
      for (let done = 0; done < this.fill; ) {
        done += writeSync(this.fh.fd, this.buffer, done, this.fill - done, this.written + done);
      }
    } catch (err) {
      this.diskFailure = diskError(err);
      throw this.diskFailure;
    }
    this.written += this.fill;
    this.fill = 0;
  }

  private checkpointDue(): boolean {
    const fresh = this.written - this.checkpointed;
    return !this.syncing && fresh >= CHECKPOINT_MIN_BYTES && Date.now() - this.checkpointAt >= CHECKPOINT_MS;
  }

  /** Makes what was written durable without stalling the transfer, then reports the offset. */
  private syncInBackground(): void {
    const target = this.written;
    this.syncing = true;
    this.syncDone = (async () => {
      try {
        await this.fh.datasync();
        this.markCheckpoint(target);
      } catch (err) {
        this.diskFailure = diskError(err);
      } finally {
        this.syncing = false;
      }
    })();
  }

  private markCheckpoint(offset: number): void {
    if (offset <= this.checkpointed) return;
    this.checkpointed = offset;
    this.checkpointAt = Date.now();
    this.req.onCheckpoint?.(offset);
  }

  /** Writes out everything received; when `durable`, also makes it durable and reports the offset. */
  async checkpoint(durable: boolean): Promise<void> {
    await this.syncDone;
    if (this.fill > 0) this.flush();
    if (this.diskFailure) throw this.diskFailure;
    if (!durable) return;
    try {
      await this.fh.datasync();
    } catch (err) {
      throw diskError(err);
    }
    this.markCheckpoint(this.written);
  }

  private async restart(): Promise<void> {
    this.restartPending = false;
    await this.syncDone;
    this.fill = 0;
    await this.fh.truncate(0);
    this.hash = createHash('sha256');
    this.received = this.written = this.checkpointed = 0;
    // The persisted offset must not claim bytes the truncation removed.
    this.checkpointAt = Date.now();
    this.req.onCheckpoint?.(0);
  }

  /** Turns a non-success answer into the error to throw, after a 416 restarting once from byte 0. */
  private async refuse(failure: { head: ResponseHead; from: number; body: Buffer[] }): Promise<never> {
    const { status, headers } = failure.head;
    const code = s3ErrorCode(Buffer.concat(failure.body).toString('utf8'));
    const answered = `HTTP ${status}${code ? ` ${code}` : ''}`;
    if (status === 416 && failure.from > 0 && !this.restartedAfter416) {
      // The kept prefix does not fit the object (it changed, or the offset is past its end): the
      // whole image again, once. A second 416 means the server cannot serve the offered image.
      this.restartedAfter416 = true;
      await this.restart();
      throw new TransientError(
        `Image URL at ${this.origin} answered ${answered} to a resume at byte ${failure.from}; restarting from byte 0`,
      );
    }
    if (status === 416) {
      throw new DownloadRefusedError(
        `Image URL at ${this.origin} answered ${answered} to a resume at byte ${failure.from}, after restarting from byte 0 once`,
      );
    }
    if (status === 403 || status === 404 || status === 410) {
      // A presigned URL that expired or an image that was deleted: only a new checkin can help.
      throw new UrlRefusedError(`Image URL refused with ${answered} by ${this.origin}`);
    }
    const retryAfter =
      status === 429 || status === 503 ? parseRetryAfter(headers['retry-after'], Date.now()) : undefined;
    throw new StatusError(`Image download from ${this.origin} answered ${answered}`, retryAfter);
  }
}
