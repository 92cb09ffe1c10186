/**
 * The CLI's S3 adapter: the only file importing @aws-sdk/client-s3. Uploads images (multipart for
 * large ones, through @aws-sdk/lib-storage) and deletes them, turning SDK errors into one-line
 * ImageStoreErrors that name the endpoint or bucket and what to do.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ImageStoreError } from './errors.ts';

export interface ImageStoreOptions {
  readonly region: string;
  readonly bucket: string;
  /** Custom endpoint (s3rver of the local cloud); AWS otherwise. */
  readonly endpoint?: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** PEM certificate to trust, for a local cloud serving HTTPS with its own certificate. */
  readonly caFile?: string;
  /** What to do when the endpoint cannot be reached (e.g. start the local cloud). */
  readonly unreachableHint?: string;
}

export interface UploadOptions {
  /** Expected size, to pick a part size that stays under S3's 10,000 parts. */
  readonly size: number;
  readonly signal?: AbortSignal;
  /** Bytes S3 acknowledged so far (after each part). */
  readonly onProgress?: (loaded: number) => void;
}

/** S3's minimum part size; lib-storage's default. */
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;
const ACCESS_ERRORS =
  /^(AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|CredentialsProviderError|InvalidToken)$/;

export class ImageStore {
  readonly bucket: string;
  /** Where the images go, for messages: an endpoint URL or the bucket's AWS region. */
  readonly where: string;
  private readonly client: S3Client;
  private readonly hint: string;

  constructor(options: ImageStoreOptions) {
    this.bucket = options.bucket;
    this.where = options.endpoint ?? `bucket ${options.bucket} in ${options.region}`;
    this.hint = options.unreachableHint ?? 'check your network';
    const custom = options.endpoint !== undefined;
    this.client = new S3Client({
      region: options.region,
      ...(custom ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Flexible checksums would send streamed parts with aws-chunked framing, which s3rver stores
      // verbatim: the image would be silently corrupted. AWS validates them, so keep them there.
      ...(custom
        ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
        : {}),
      requestHandler: {
        connectionTimeout: 5000,
        // Socket inactivity, not the whole request: a large part may take long on a slow link.
        requestTimeout: 120_000,
        ...(options.caFile ? { httpsAgent: new Agent({ ca: readCa(options.caFile), keepAlive: true }) } : {}),
      },
    });
  }

  /** Streams `body` to `key`; multipart when it exceeds one part. Aborted uploads leave no parts behind. */
  async upload(key: string, body: Readable, options: UploadOptions): Promise<void> {
    const partSize = Math.max(MIN_PART_SIZE, Math.ceil(options.size / MAX_PARTS));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const { onProgress } = options;
    if (onProgress) upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0));
    const abort = () => {
      upload.abort().catch(() => undefined);
    };
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      if (options.signal?.aborted) {
        const reason: unknown = options.signal.reason;
        throw reason instanceof Error ? reason : new ImageStoreError(`Upload to ${this.where} aborted`);
      }
      throw this.toError(err, `upload to ${this.where}`);
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }

  /** Deletes an object; deleting a missing one succeeds (S3 semantics). */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.toError(err, `delete of s3://${this.bucket}/${key}`);
    }
  }

  destroy(): void {
    this.client.destroy();
  }

  private toError(err: unknown, what: string): ImageStoreError {
    if (err instanceof ImageStoreError) return err;
    if (!(err instanceof Error)) return new ImageStoreError(`S3 ${what} failed: ${String(err)}`);
    const code = (err as { code?: unknown }).code;
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const cause = { cause: err };
    if ((typeof code === 'string' && NETWORK_CODES.test(code)) || err.name === 'TimeoutError') {
      return new ImageStoreError(
        `S3 unreachable at ${this.where} (${code ?? err.name}): ${this.hint}`,
        undefined,
        cause,
      );
    }
    if (err.name === 'NoSuchBucket') {
      return new ImageStoreError(
        `S3 bucket "${this.bucket}" does not exist at ${this.where}`,
        undefined,
        cause,
      );
    }
    if (ACCESS_ERRORS.test(err.name) || status === 403) {
      return new ImageStoreError(
        `S3 refused access to bucket "${this.bucket}" (${err.name}): check your AWS credentials`,
        undefined,
        cause,
      );
    }
    if (status !== undefined && status >= 500) {
      return new ImageStoreError(
        `S3 ${what} failed: ${err.name} (HTTP ${status}); retry later`,
        undefined,
        cause,
      );
    }
    return new ImageStoreError(
      `S3 ${what} failed: ${err.name}: ${err.message.split('\n')[0]}`,
      undefined,
      cause,
    );
  }
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ImageStoreError(
      `Cannot read the local cloud's certificate ${file}: ${(err as Error).message}`,
      undefined,
      { cause: err },
    );
  }
}
