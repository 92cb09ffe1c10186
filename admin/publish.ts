/**
 * Publishing an update (DESIGN §6: nothing half-published):
 *   1. validate everything (settings, policy, signing key, image, duplicate precedence) before
 *      writing anything;
 *   2. claim the version guard `V#<precedence>` with a conditional put (admin/version-guard.ts);
 *   3. stream the image to S3, hashing it from the same stream;
 *   4. sign the manifest, write the update record (the only thing checkins and `list` see);
 *   5. bump the product stamp so running clouds reload their cached update list.
 * A failure removes what was written, in reverse order, and names the step that failed.
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '#core/errors.ts';
import { signManifest } from '#core/manifest.ts';
import type { UpdateRecord } from '#core/types.ts';
import { parseVersion, precedenceKey } from '#core/version.ts';
import type { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { updateToItem } from '#functions/records.ts';
import { announceChange, type CloudParts } from './cloud.ts';
import { adminOperation, ConflictError, oneLine, PublishError, toAdminError } from './errors.ts';
import { type CheckedImage, checkImageSource, type ImageSource, openImage } from './image-source.ts';
import { checkProduct, checkSettings, settingsOf, type UpdateSettings } from './settings.ts';
import { updatesOf } from './updates.ts';
import { claimGuard, duplicateError, GUARD_LEASE_MS, holdClaim, releaseGuard } from './version-guard.ts';

export interface PublishOptions extends Partial<UpdateSettings> {
  readonly product: string;
  readonly version: string;
  readonly allowDowngrade?: boolean;
  /** Publish disabled: devices do not get it until it is enabled. */
  readonly disabled?: boolean;
  /** PEM Ed25519 private key: sign the manifest (core/manifest.ts). */
  readonly signKeyPem?: string;
}

/** What to publish: the settings and the image, from a file or a stream. */
export type PublishInput = PublishOptions & ImageSource;

export interface PublishHooks {
  /** Bytes of the image S3 acknowledged so far, out of `total`. */
  readonly onProgress?: (sent: number, total: number) => void;
  readonly now?: () => number;
  /** How long an unrefreshed claim on a version guard holds (default GUARD_LEASE_MS). */
  readonly guardLeaseMs?: number;
}

const UPDATE_ID_LENGTH = 10;
/** Lower-case base32: ids are safe in URLs, S3 keys, shells, and never start with `-`. */
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A short random update id (50 bits): 256 is a multiple of 32, so masking keeps it uniform. */
export function newUpdateId(): string {
  let id = '';
  for (const byte of randomBytes(UPDATE_ID_LENGTH)) id += ID_ALPHABET[byte & 31];
  return id;
}

function checkSignKey(pem: string, product: string, version: string, allowDowngrade: boolean): void {
  // Signing a throwaway manifest validates the key (PEM, Ed25519) before anything is uploaded.
  signManifest({ product, version, sha256: '0'.repeat(64), size: 0, allowDowngrade }, pem);
}

async function validatePublish(table: Table, input: PublishInput): Promise<CheckedImage> {
  checkProduct(input.product);
  parseVersion(input.version);
  const allowDowngrade = input.allowDowngrade === true;
  checkSettings(input.version, allowDowngrade, settingsOf(input));
  if (input.signKeyPem !== undefined)
    checkSignKey(input.signKeyPem, input.product, input.version, allowDowngrade);
  const image = checkImageSource(input);
  const key = precedenceKey(input.version);
  const existing = (await updatesOf(table, input.product)).find((u) => precedenceKey(u.version) === key);
  if (existing) throw duplicateError(input.product, input.version, existing);
  return image;
}

/** Validates a publish without writing anything; returns the image's size and name. */
export function preparePublish(cloud: Pick<CloudParts, 'table' | 'store'>, input: PublishInput) {
  return adminOperation(cloud.store, () => validatePublish(cloud.table, input));
}

/** One step's undo; `record` marks the one that makes an update visible. */
interface Undo {
  readonly what: string;
  readonly record?: boolean;
  run(): Promise<unknown>;
}

/** One publish in progress: its steps in order, and what to remove when one fails. */
class PublishRun {
  private readonly id = newUpdateId();
  private readonly key: string;
  private readonly undo: Undo[] = [];
  private readonly now: () => number;
  private readonly allowDowngrade: boolean;
  step = 'claiming the version';

  constructor(
    private readonly cloud: CloudParts,
    private readonly input: PublishInput,
    private readonly image: CheckedImage,
    private readonly hooks: PublishHooks,
  ) {
    this.key = `images/${input.product}/${input.version}/${image.name}`;
    this.now = hooks.now ?? Date.now;
    this.allowDowngrade = input.allowDowngrade === true;
  }

  async run(): Promise<UpdateRecord> {
    const { table } = this.cloud;
    const { product, version } = this.input;
    const leaseMs = this.hooks.guardLeaseMs ?? GUARD_LEASE_MS;
    const claim = await claimGuard(
      table,
      product,
      version,
      { id: this.id, key: this.key },
      this.now,
      leaseMs,
    );
    this.undo.push({
      what: `version guard ${claim.guardKey.sk}`,
      run: () => releaseGuard(table, claim.guardKey, this.id),
    });
    if (claim.staleImage) await this.cloud.images.delete(claim.staleImage).catch(() => undefined);
    const hold = holdClaim(table, claim.guardKey, this.id, this.now, leaseMs);
    try {
      this.step = 'uploading the image';
      const { sha256, size } = await this.upload(hold.signal, () => hold.lost() !== undefined);
      this.step = 'signing the manifest';
      const signature = this.sign(sha256, size);
      this.step = 'writing the update record';
      await hold.confirm();
      const record = await this.writeRecord(sha256, size, signature);
      this.step = 'announcing the update to running clouds';
      await announceChange(this.cloud, product);
      return record;
    } finally {
      hold.stop();
    }
  }

  private async upload(signal: AbortSignal, lost: () => boolean): Promise<{ sha256: string; size: number }> {
    const { images } = this.cloud;
    const expected = this.image.size;
    // Registered before the upload: a failed final request may still have stored the object. Until
    // the upload succeeded, that is unlikely (S3 stores an object atomically), so a failed removal is
    // not reported then; the next publish of this version overwrites the key anyway. A publish that
    // lost its guard leaves the key to the new holder.
    let uploaded = false;
    this.undo.push({
      what: `image s3://${images.bucket}/${this.key}`,
      run: async () => {
        if (lost()) return;
        try {
          await images.delete(this.key);
        } catch (err) {
          if (uploaded) throw err;
        }
      },
    });
    const image = openImage(this.input, expected);
    const { onProgress } = this.hooks;
    try {
      await images.upload(this.key, image.body, {
        size: expected,
        signal,
        ...(onProgress ? { onProgress: (loaded: number) => onProgress(loaded, expected) } : {}),
      });
    } catch (err) {
      throw sourceFailure(image.sourceError(), this.image) ?? err;
    } finally {
      image.close();
    }
    uploaded = true;
    const result = image.result();
    if (result.size !== expected) throw sizeMismatch(this.input, this.image, result.size);
    return result;
  }

  private sign(sha256: string, size: number): string | undefined {
    const { product, version, signKeyPem } = this.input;
    if (signKeyPem === undefined) return undefined;
    return signManifest({ product, version, sha256, size, allowDowngrade: this.allowDowngrade }, signKeyPem);
  }

  private async writeRecord(sha256: string, size: number, signature: string | undefined) {
    const { product, version } = this.input;
    const record: UpdateRecord = {
      id: this.id,
      product,
      version,
      ...settingsOf(this.input),
      enabled: this.input.disabled !== true,
      paused: false,
      allowDowngrade: this.allowDowngrade,
      key: this.key,
      checksum: sha256,
      size,
      ...(signature ? { signature } : {}),
      created: new Date(this.now()).toISOString(),
      counters: { started: 0, success: 0, failure: 0, deferred: 0 },
    };
    // Registered first: a timed-out put may have been applied.
    this.undo.push({
      what: `update record ${this.id}`,
      record: true,
      run: async () => {
        await this.cloud.table.delete(keys.update(product, this.id));
        await announceChange(this.cloud, product).catch(() => undefined);
      },
    });
    if (!(await this.cloud.table.put(updateToItem(record), true)))
      throw new ConflictError(`update id ${this.id} is taken: publish again`);
    return record;
  }

  /** Removes what was written, newest first; the error says what failed and what, if anything, remains. */
  async fail(err: unknown): Promise<PublishError> {
    const left: Undo[] = [];
    for (const undo of this.undo.reverse()) {
      try {
        await undo.run();
      } catch {
        left.push(undo);
      }
    }
    const { product, version } = this.input;
    let outcome = '; nothing was published';
    if (left.some((l) => l.record)) {
      outcome = `; the update may be visible: remove it with updraft delete --product ${product} --version ${version}`;
    } else if (left.length) {
      outcome += `, but could not remove ${left.map((l) => l.what).join(' and ')}`;
    }
    const cause = toAdminError(err, this.cloud.store);
    return new PublishError(
      `Publishing ${product} ${version} failed while ${this.step}: ${cause.message}${outcome}`,
      cause,
    );
  }
}

/** The source's own failure as the reason of a failed upload, rather than S3's view of it. */
function sourceFailure(err: Error | undefined, image: CheckedImage): Error | undefined {
  if (err === undefined || err instanceof ValidationError) return err;
  return new ValidationError(`Reading ${image.label} failed: ${oneLine(err.message)}`, { cause: err });
}

function sizeMismatch(input: ImageSource, image: CheckedImage, size: number): ValidationError {
  if ('file' in input) {
    return new ValidationError(
      `${input.file} changed during the upload (${image.size} → ${size} bytes): publish again`,
    );
  }
  return new ValidationError(`The uploaded image ended after ${size} of the ${image.size} bytes announced`);
}

/** Publishes an update (see the file comment for the order); returns the stored record. */
export async function publish(
  cloud: CloudParts,
  input: PublishInput,
  hooks: PublishHooks = {},
): Promise<UpdateRecord> {
  const image = await preparePublish(cloud, input);
  const run = new PublishRun(cloud, input, image, hooks);
  try {
    return await run.run();
  } catch (err) {
    throw await run.fail(err);
  }
}
