/**
 * Publishing and managing updates: what `updraft publish|list|show|enable|disable|edit|delete` do,
 * as functions over a Table and an ImageStore so tests and other tools can call them directly.
 *
 * Publish order (DESIGN §6: nothing half-published):
 *   1. validate everything (flags, policy, file, duplicate precedence) before writing anything;
 *   2. claim the version guard `V#<precedence>` with a conditional put;
 *   3. stream the image to S3, hashing it from the same stream;
 *   4. sign the manifest, write the update record (the only thing checkins and `list` see);
 *   5. bump the product stamp so running clouds reload their cached update list.
 * A failure removes what was written, in reverse order, and names the step that failed.
 *
 * The guard is claimed before the upload (not after) because every publish of one version writes
 * the same S3 key: claiming first means only the guard holder ever writes or deletes that key. A
 * publish that dies leaves a guard without a record; it is stale once its claim is older than the
 * lease, and the holder refreshes its claim while uploading so long uploads keep it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import { isValidProduct } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import { signManifest } from '#core/manifest.ts';
import { compilePolicy } from '#core/policy.ts';
import { checkPercentage } from '#core/rollout.ts';
import type { AbortSettings, RolloutLimits, UpdateRecord } from '#core/types.ts';
import { parseVersion, precedenceKey, quoteInput, sortByVersionDescending } from '#core/version.ts';
import { bumpStamp } from '#functions/device-store.ts';
import type { Item, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { updateFromItem, updateToItem } from '#functions/records.ts';
import { CliError, errorLine, NotFoundError, PublishError, type StoreDescription } from './errors.ts';
import type { ImageStore } from './s3.ts';

/** What a builder sets on an update besides its image. */
export interface UpdateSettings extends RolloutLimits, AbortSettings {
  /** Distribution policy; '' means `semver(version, "<", newVersion)`. */
  readonly policy: string;
  readonly description: string;
}

export interface PublishInput extends Partial<UpdateSettings> {
  readonly product: string;
  readonly version: string;
  /** Path of the image file. */
  readonly file: string;
  readonly allowDowngrade?: boolean;
  /** Publish disabled: devices do not get it until `updraft enable`. */
  readonly disabled?: boolean;
  /** PEM Ed25519 private key: sign the manifest (core/manifest.ts). */
  readonly signKeyPem?: string;
}

/** The parts of a cloud that changes to updates use. */
export interface RecordTarget {
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
export interface UpdateTarget extends RecordTarget {
  readonly images: ImageStore;
}

/** Every change to a product's updates ends here, last: running clouds reload their cached list. */
async function announce(target: RecordTarget, product: string): Promise<void> {
  await bumpStamp(target.table, product);
  target.notifyChange?.();
}

export interface PublishHooks {
  /** Bytes of the image S3 acknowledged so far, out of `total`. */
  readonly onProgress?: (sent: number, total: number) => void;
  readonly now?: () => number;
  /** How long an unrefreshed claim on a version guard holds (default GUARD_LEASE_MS). */
  readonly guardLeaseMs?: number;
}

/** Changes of `updraft edit`; null removes a limit or an abort setting. */
export interface UpdateChanges {
  readonly policy?: string;
  readonly description?: string;
  readonly percentage?: number | null;
  readonly limit?: number | null;
  readonly rate?: number | null;
  readonly period?: number | null;
  readonly abortThreshold?: number | null;
  readonly abortMin?: number | null;
}

/**
 * A publish holding a version guard refreshes its claim every quarter of this; a guard without an
 * update record whose claim is older is left over from a publish that died, and is taken over.
 */
export const GUARD_LEASE_MS = 60_000;
export const MAX_DESCRIPTION_LENGTH = 1024;
const UPDATE_ID_LENGTH = 10;
/** Lower-case base32: ids are safe in URLs, S3 keys, shells, and never start with `-`. */
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A short random update id (50 bits): 256 is a multiple of 32, so masking keeps it uniform. */
export function newUpdateId(): string {
  let id = '';
  for (const byte of randomBytes(UPDATE_ID_LENGTH)) id += ID_ALPHABET[byte & 31];
  return id;
}

function checkProduct(product: string): void {
  if (!isValidProduct(product)) {
    throw new ValidationError(
      `Invalid product ${quoteInput(product)}: use 1–64 characters of A-Z a-z 0-9 . _ : -`,
    );
  }
}

function isWhole(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1;
}

/**
 * Checks the settings of an update of `version` (publish and edit alike). Throws ValidationError
 * naming the flag to fix, or the PolicyError of a policy that does not compile.
 */
export function checkSettings(version: string, allowDowngrade: boolean, s: UpdateSettings): void {
  const { percentage, limit, rate, period, abortThreshold, abortMin } = s;
  if (percentage !== undefined) checkPercentage(percentage);
  if (limit !== undefined && !isWhole(limit)) {
    throw new ValidationError(`Invalid --limit ${limit}: use a whole number of devices, at least 1`);
  }
  if ((rate === undefined) !== (period === undefined)) {
    throw new ValidationError('--rate and --period go together: --rate N grants per --period S seconds');
  }
  if (rate !== undefined && !isWhole(rate)) {
    throw new ValidationError(`Invalid --rate ${rate}: use a whole number of grants, at least 1`);
  }
  if (period !== undefined && !isWhole(period)) {
    throw new ValidationError(`Invalid --period ${period}: use a whole number of seconds, at least 1`);
  }
  if ((abortThreshold === undefined) !== (abortMin === undefined)) {
    throw new ValidationError(
      '--abort-threshold and --abort-min go together: pause after N reports when PCT% of them failed',
    );
  }
  if (
    abortThreshold !== undefined &&
    !(Number.isFinite(abortThreshold) && abortThreshold > 0 && abortThreshold <= 100)
  ) {
    throw new ValidationError(
      `Invalid --abort-threshold ${abortThreshold}: use a failure percentage greater than 0 and at most 100`,
    );
  }
  if (abortMin !== undefined && !isWhole(abortMin)) {
    throw new ValidationError(`Invalid --abort-min ${abortMin}: use a whole number of reports, at least 1`);
  }
  if (s.description.length > MAX_DESCRIPTION_LENGTH) {
    throw new ValidationError(`--description is too long: at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  compilePolicy(s.policy);
  const empty = s.policy.trim() === '';
  if (empty && parseVersion(version).prerelease !== '') {
    throw new ValidationError(
      `Prerelease ${version} needs a --policy: with an empty one it would reach every device (e.g. --policy 'test == true')`,
    );
  }
  if (empty && allowDowngrade) {
    throw new ValidationError('--allow-downgrade needs a non-empty --policy naming the devices to downgrade');
  }
}

function settingsOf(input: Partial<UpdateSettings>): UpdateSettings {
  const s: { -readonly [K in keyof UpdateSettings]: UpdateSettings[K] } = {
    policy: input.policy ?? '',
    description: input.description ?? '',
  };
  for (const name of ['percentage', 'limit', 'rate', 'period', 'abortThreshold', 'abortMin'] as const) {
    if (input[name] !== undefined) s[name] = input[name];
  }
  return s;
}

/** The image file must exist, be a regular file and not be empty. Returns its size. */
function checkImageFile(file: string): number {
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
  return stat.size;
}

function checkSignKey(pem: string, product: string, version: string, allowDowngrade: boolean): void {
  // Signing a throwaway manifest validates the key (PEM, Ed25519) before anything is uploaded.
  signManifest({ product, version, sha256: '0'.repeat(64), size: 0, allowDowngrade }, pem);
}

async function updatesOf(table: Table, product: string): Promise<UpdateRecord[]> {
  const { pk, skPrefix } = keys.updatesOf(product);
  return sortByVersionDescending((await table.query(pk, skPrefix, true)).map(updateFromItem));
}

function duplicateError(product: string, version: string, existing: UpdateRecord): CliError {
  const same =
    existing.version === version
      ? 'is already published'
      : `has the precedence of published ${existing.version}`;
  return new CliError(
    `Version ${version} of ${product} ${same} (update ${existing.id}): publish a higher version, or delete it first with updraft delete --product ${product} --version ${existing.version}`,
  );
}

/** Bytes through, hashed and counted on the way. */
function hashingStream() {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ sha256: hash.digest('hex'), size }) };
}

interface Claim {
  readonly guardKey: { readonly pk: string; readonly sk: string };
  /** Image key of a stale publish whose guard was taken over, to remove. */
  readonly staleImage?: string;
}

/**
 * Claims the version guard for update `claim.id`, taking over a stale one. Throws when the version is
 * published or another publish of it is alive. Guard attributes: `id` (the update), `version`, `key`
 * (its image) and `claimed` (ISO time of the last claim or refresh).
 */
async function claimGuard(
  table: Table,
  product: string,
  version: string,
  claim: { id: string; key: string },
  now: () => number,
  leaseMs: number,
): Promise<Claim> {
  const guardKey = keys.versionGuard(product, precedenceKey(version));
  for (let attempt = 0; attempt < 3; attempt++) {
    const claimed = new Date(now()).toISOString();
    if (await table.put({ ...guardKey, ...claim, version, claimed }, true)) return { guardKey };
    const guard = await table.get(guardKey, true);
    if (!guard) continue; // released meanwhile: try again
    const holder = typeof guard.id === 'string' ? guard.id : undefined;
    const record = holder === undefined ? undefined : await table.get(keys.update(product, holder), true);
    if (record) throw duplicateError(product, version, updateFromItem(record));
    const at = typeof guard.claimed === 'string' ? guard.claimed : undefined;
    const age = at === undefined ? Number.POSITIVE_INFINITY : now() - Date.parse(at);
    if (age < leaseMs) {
      throw new CliError(
        `Version ${version} of ${product} is being published by another updraft (claimed ${Math.max(0, Math.round(age / 1000))} s ago): wait for it, or retry in ${Math.ceil((leaseMs - age) / 1000)} s if it failed`,
      );
    }
    // Stale: left by a publish that died before writing its record. Take it over unless someone else just did.
    const values: Record<string, string> = {};
    if (holder !== undefined) values[':holder'] = holder;
    if (at !== undefined) values[':at'] = at;
    const taken = await table.update(guardKey, {
      set: { ...claim, version, claimed },
      condition: `${holder === undefined ? 'attribute_not_exists(id)' : 'id = :holder'} AND ${at === undefined ? 'attribute_not_exists(#claimed)' : '#claimed = :at'}`,
      values,
    });
    if (taken) {
      const staleKey = typeof guard.key === 'string' && guard.key !== claim.key ? guard.key : undefined;
      return { guardKey, ...(staleKey ? { staleImage: staleKey } : {}) };
    }
  }
  throw new CliError(`Version ${version} of ${product} is being claimed by several publishes at once: retry`);
}

/** Refreshes a claim; false when another publish took the guard over. */
async function refreshClaim(table: Table, guardKey: Claim['guardKey'], id: string, now: () => number) {
  const out = await table.update(guardKey, {
    set: { claimed: new Date(now()).toISOString() },
    condition: 'id = :me',
    values: { ':me': id },
  });
  return out !== undefined;
}

/** Validates a publish without writing anything; returns the image size. */
export async function preparePublish(table: Table, input: PublishInput): Promise<number> {
  checkProduct(input.product);
  parseVersion(input.version);
  const allowDowngrade = input.allowDowngrade === true;
  checkSettings(input.version, allowDowngrade, settingsOf(input));
  if (input.signKeyPem !== undefined)
    checkSignKey(input.signKeyPem, input.product, input.version, allowDowngrade);
  const size = checkImageFile(input.file);
  const key = precedenceKey(input.version);
  const existing = (await updatesOf(table, input.product)).find((u) => precedenceKey(u.version) === key);
  if (existing) throw duplicateError(input.product, input.version, existing);
  return size;
}

/** Publishes an update (see the file comment for the order); returns the stored record. */
export async function publish(
  target: UpdateTarget,
  input: PublishInput,
  hooks: PublishHooks = {},
): Promise<UpdateRecord> {
  const { table, images } = target;
  const now = hooks.now ?? Date.now;
  const leaseMs = hooks.guardLeaseMs ?? GUARD_LEASE_MS;
  const expectedSize = await preparePublish(table, input);
  const { product, version } = input;
  const allowDowngrade = input.allowDowngrade === true;
  const id = newUpdateId();
  const key = `images/${product}/${version}/${basename(input.file)}`;

  /** What to remove on failure, in reverse order; `record` marks the one that makes an update visible. */
  const undo: { what: string; record?: boolean; run: () => Promise<unknown> }[] = [];
  let step = 'claiming the version';
  let lost: Error | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  const abort = new AbortController();
  try {
    const claim = await claimGuard(table, product, version, { id, key }, now, leaseMs);
    undo.push({
      what: `version guard ${claim.guardKey.sk}`,
      run: () => table.delete(claim.guardKey, { expression: 'id = :me', values: { ':me': id } }),
    });
    if (claim.staleImage) await images.delete(claim.staleImage).catch(() => undefined);

    heartbeat = setInterval(() => {
      refreshClaim(table, claim.guardKey, id, now).then(
        (held) => {
          if (held || lost) return;
          lost = new CliError('another updraft took over this version while the upload stalled');
          abort.abort(lost);
        },
        () => undefined, // unreachable now; the record write will tell
      );
    }, leaseMs / 4);
    heartbeat.unref();

    step = 'uploading the image';
    // Registered before the upload: a failed final request may still have stored the object. Until
    // the upload succeeded, that is unlikely (S3 stores an object atomically), so a failed removal is
    // not reported then; the next publish of this version overwrites the key anyway.
    let uploaded = false;
    undo.push({
      what: `image s3://${images.bucket}/${key}`,
      run: async () => {
        if (lost) return;
        try {
          await images.delete(key);
        } catch (err) {
          if (uploaded) throw err;
        }
      },
    });
    const source = createReadStream(input.file);
    const hasher = hashingStream();
    const body: Readable = pipeline(source, hasher.stream, () => undefined);
    try {
      const { onProgress } = hooks;
      await images.upload(key, body, {
        size: expectedSize,
        signal: abort.signal,
        ...(onProgress ? { onProgress: (loaded: number) => onProgress(loaded, expectedSize) } : {}),
      });
    } finally {
      source.destroy();
    }
    uploaded = true;
    const { sha256, size } = hasher.result();
    if (size !== expectedSize) {
      throw new CliError(
        `${input.file} changed during the upload (${expectedSize} → ${size} bytes): publish again`,
      );
    }

    step = 'signing the manifest';
    const signature =
      input.signKeyPem === undefined
        ? undefined
        : signManifest({ product, version, sha256, size, allowDowngrade }, input.signKeyPem);

    step = 'writing the update record';
    clearInterval(heartbeat);
    if (!lost && !(await refreshClaim(table, claim.guardKey, id, now))) {
      lost = new CliError('another updraft took over this version while the upload stalled');
    }
    if (lost) throw lost;
    const settings = settingsOf(input);
    const record: UpdateRecord = {
      id,
      product,
      version,
      ...settings,
      enabled: input.disabled !== true,
      paused: false,
      allowDowngrade,
      key,
      checksum: sha256,
      size,
      ...(signature ? { signature } : {}),
      created: new Date(now()).toISOString(),
      counters: { started: 0, success: 0, failure: 0, deferred: 0 },
    };
    // Registered first: a timed-out put may have been applied.
    undo.push({
      what: `update record ${id}`,
      record: true,
      run: async () => {
        await table.delete(keys.update(product, id));
        await announce(target, product).catch(() => undefined);
      },
    });
    if (!(await table.put(updateToItem(record), true)))
      throw new CliError(`update id ${id} is taken: publish again`);

    step = 'announcing the update to running clouds';
    await announce(target, product);
    return record;
  } catch (err) {
    clearInterval(heartbeat);
    const left: { what: string; record: boolean }[] = [];
    for (const { what, record, run } of undo.reverse()) {
      try {
        await run();
      } catch {
        left.push({ what, record: record === true });
      }
    }
    let outcome = '; nothing was published';
    if (left.some((l) => l.record)) {
      outcome = `; the update may be visible: remove it with updraft delete --product ${product} --version ${version}`;
    } else if (left.length) {
      outcome += `, but could not remove ${left.map((l) => l.what).join(' and ')}`;
    }
    throw new PublishError(
      `Publishing ${product} ${version} failed while ${step}: ${errorLine(err, target.store).message}${outcome}`,
      undefined,
      { cause: err },
    );
  }
}

/** The updates of a product, highest version first. */
export async function listUpdates(table: Table, product: string): Promise<UpdateRecord[]> {
  checkProduct(product);
  return updatesOf(table, product);
}

/** The update of `product` with `version`, or with the same precedence (build metadata ignored). */
export async function findUpdate(table: Table, product: string, version: string): Promise<UpdateRecord> {
  checkProduct(product);
  parseVersion(version);
  const updates = await updatesOf(table, product);
  const found =
    updates.find((u) => u.version === version) ??
    updates.find((u) => precedenceKey(u.version) === precedenceKey(version));
  if (!found) {
    throw new NotFoundError(
      `No update ${version} of product ${product}: see updraft list --product ${product}`,
    );
  }
  return found;
}

async function changeUpdate(
  target: RecordTarget,
  update: UpdateRecord,
  set: Record<string, string | number | boolean | undefined>,
  remove: string[] = [],
): Promise<UpdateRecord> {
  const out = await target.table.update(keys.update(update.product, update.id), {
    set,
    remove,
    condition: 'attribute_exists(pk)',
  });
  if (!out) throw new NotFoundError(`Update ${update.version} of ${update.product} was deleted meanwhile`);
  await announce(target, update.product);
  return updateFromItem(out as Item);
}

/** Enables an update; also resumes one paused by auto-abort. */
export async function enableUpdate(
  target: RecordTarget,
  product: string,
  version: string,
): Promise<UpdateRecord> {
  const update = await findUpdate(target.table, product, version);
  return changeUpdate(target, update, { enabled: true, paused: false }, ['pauseReason']);
}

export async function disableUpdate(
  target: RecordTarget,
  product: string,
  version: string,
): Promise<UpdateRecord> {
  const update = await findUpdate(target.table, product, version);
  return changeUpdate(target, update, { enabled: false });
}

/** Changes policy, description, limits or abort settings; the result is validated as a publish would be. */
export async function editUpdate(
  target: RecordTarget,
  product: string,
  version: string,
  changes: UpdateChanges,
): Promise<UpdateRecord> {
  const entries = Object.entries(changes).filter(([, v]) => v !== undefined);
  if (entries.length === 0) {
    throw new ValidationError(
      'Nothing to edit: pass --policy, --description, --percentage, --limit, --rate/--period or --abort-threshold/--abort-min',
    );
  }
  const update = await findUpdate(target.table, product, version);
  const merged: Record<string, unknown> = { ...settingsOf(update) };
  for (const [name, value] of entries) merged[name] = value === null ? undefined : value;
  checkSettings(update.version, update.allowDowngrade, settingsOf(merged as Partial<UpdateSettings>));
  const set: Record<string, string | number | undefined> = {};
  for (const [name, value] of entries) set[name] = value === null ? undefined : (value as string | number);
  return changeUpdate(target, update, set);
}

/** Deletes the update record (first, so devices stop getting it), then its image and version guard. */
export async function deleteUpdate(
  target: UpdateTarget,
  product: string,
  version: string,
): Promise<UpdateRecord> {
  const { table, images } = target;
  const update = await findUpdate(table, product, version);
  await table.delete(keys.update(product, update.id));
  await announce(target, product);
  try {
    await images.delete(update.key);
  } catch (err) {
    throw new CliError(
      `Deleted update ${update.version} of ${product}, but not its image s3://${images.bucket}/${update.key}: ${errorLine(err).message}`,
      undefined,
      { cause: err },
    );
  }
  await table.delete(keys.versionGuard(product, precedenceKey(update.version)), {
    expression: 'id = :id',
    values: { ':id': update.id },
  });
  return update;
}
