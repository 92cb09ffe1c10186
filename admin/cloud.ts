/**
 * The parts of one device cloud that admin operations work on. The CLI (cli/cloud.ts) and the
 * console open them; admin/ never reads env vars, config files or endpoints itself.
 */
import type { Readable } from 'node:stream';
import type { Table } from '#functions/dynamo.ts';
import { bumpStamp } from '#functions/stamps.ts';
import type { StoreDescription } from './errors.ts';

export interface UploadOptions {
  /** Expected size, to pick a part size that stays under S3's 10,000 parts. */
  readonly size: number;
  readonly signal?: AbortSignal;
  /** Bytes S3 acknowledged so far. */
  readonly onProgress?: (loaded: number) => void;
}

/** Where images go (cli/s3.ts's ImageStore is one); errors it throws should be ImageStoreErrors. */
export interface ImageStorage {
  readonly bucket: string;
  /** Streams `body` to `key`; an aborted or failed upload leaves no object behind. */
  upload(key: string, body: Readable, options: UploadOptions): Promise<void>;
  /** Deletes an object; deleting a missing one succeeds. */
  delete(key: string): Promise<void>;
}

/** What operations on update records and registry reads need. */
export interface CloudRecords {
  readonly table: Table;
  /** Names the table in messages about an unreachable store. */
  readonly store?: StoreDescription;
  /**
   * Called after every change, once the product stamp is bumped: the local cloud reloads its update
   * list at once through this (AWS clouds revalidate the stamp within 30 s).
   */
  readonly notifyChange?: () => void;
}

/** Publish and delete also reach the images. */
export interface CloudParts extends CloudRecords {
  readonly images: ImageStorage;
}

/** A cloud with its name, for operations over several clouds (publish --cloud all). */
export interface NamedCloud extends CloudParts {
  readonly name: string;
}

/** Every change to a product's updates ends here, last: running clouds reload their cached list. */
export async function announceChange(cloud: CloudRecords, product: string): Promise<void> {
  await bumpStamp(cloud.table, product);
  cloud.notifyChange?.();
}
