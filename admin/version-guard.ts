/**
 * The version guard `V#<precedence>` of a product: one publish at a time holds it for a version.
 *
 * The guard is claimed before the upload (not after) because every publish of one version writes
 * the same S3 key: claiming first means only the guard holder ever writes or deletes that key. A
 * publish that dies leaves a guard without a record; it is stale once its claim is older than the
 * lease, and the holder refreshes its claim while uploading so long uploads keep it.
 */
import type { UpdateRecord } from '#core/types.ts';
import { precedenceKey } from '#core/version.ts';
import type { Item, Key, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { updateFromItem } from '#functions/records.ts';
import { ConflictError } from './errors.ts';

/**
 * A publish holding a version guard refreshes its claim every quarter of this; a guard without an
 * update record whose claim is older is left over from a publish that died, and is taken over.
 */
export const GUARD_LEASE_MS = 60_000;

export interface Claim {
  readonly guardKey: Key;
  /** Image key of a stale publish whose guard was taken over, to remove. */
  readonly staleImage?: string;
}

/** What the claim says: the update id that holds it and its image key. */
export interface Claimant {
  readonly id: string;
  readonly key: string;
}

export function duplicateError(product: string, version: string, existing: UpdateRecord): ConflictError {
  const same =
    existing.version === version
      ? 'is already published'
      : `has the precedence of published ${existing.version}`;
  return new ConflictError(
    `Version ${version} of ${product} ${same} (update ${existing.id}): publish a higher version, or delete it first with updraft delete --product ${product} --version ${existing.version}`,
  );
}

export function takenOverError(): ConflictError {
  return new ConflictError('another updraft took over this version while the upload stalled');
}

/** Takes over a stale guard unless someone else just did; the condition pins the guard as read. */
async function takeOver(table: Table, guardKey: Key, guard: Item, set: Record<string, string>) {
  const holder = typeof guard.id === 'string' ? guard.id : undefined;
  const at = typeof guard.claimed === 'string' ? guard.claimed : undefined;
  const values: Record<string, string> = {};
  if (holder !== undefined) values[':holder'] = holder;
  if (at !== undefined) values[':at'] = at;
  return table.update(guardKey, {
    set,
    condition: `${holder === undefined ? 'attribute_not_exists(id)' : 'id = :holder'} AND ${at === undefined ? 'attribute_not_exists(#claimed)' : '#claimed = :at'}`,
    values,
  });
}

/**
 * Claims the version guard for `claimant`, taking over a stale one. Throws when the version is
 * published or another publish of it is alive. Guard attributes: `id` (the update), `version`, `key`
 * (its image) and `claimed` (ISO time of the last claim or refresh).
 */
export async function claimGuard(
  table: Table,
  product: string,
  version: string,
  claimant: Claimant,
  now: () => number,
  leaseMs: number,
): Promise<Claim> {
  const guardKey = keys.versionGuard(product, precedenceKey(version));
  for (let attempt = 0; attempt < 3; attempt++) {
    const claimed = new Date(now()).toISOString();
    if (await table.put({ ...guardKey, ...claimant, version, claimed }, true)) return { guardKey };
    const guard = await table.get(guardKey, true);
    if (!guard) continue; // released meanwhile: try again
    const holder = typeof guard.id === 'string' ? guard.id : undefined;
    const record = holder === undefined ? undefined : await table.get(keys.update(product, holder), true);
    if (record) throw duplicateError(product, version, updateFromItem(record));
    const at = typeof guard.claimed === 'string' ? guard.claimed : undefined;
    const age = at === undefined ? Number.POSITIVE_INFINITY : now() - Date.parse(at);
    if (age < leaseMs) {
      throw new ConflictError(
        `Version ${version} of ${product} is being published by another updraft (claimed ${Math.max(0, Math.round(age / 1000))} s ago): wait for it, or retry in ${Math.ceil((leaseMs - age) / 1000)} s if it failed`,
      );
    }
    // Stale: left by a publish that died before writing its record.
    if (await takeOver(table, guardKey, guard, { ...claimant, version, claimed })) {
      const staleKey = typeof guard.key === 'string' && guard.key !== claimant.key ? guard.key : undefined;
      return { guardKey, ...(staleKey ? { staleImage: staleKey } : {}) };
    }
  }
  throw new ConflictError(
    `Version ${version} of ${product} is being claimed by several publishes at once: retry`,
  );
}

/** Refreshes a claim; false when another publish took the guard over. */
export async function refreshClaim(
  table: Table,
  guardKey: Key,
  id: string,
  now: () => number,
): Promise<boolean> {
  const out = await table.update(guardKey, {
    set: { claimed: new Date(now()).toISOString() },
    condition: 'id = :me',
    values: { ':me': id },
  });
  return out !== undefined;
}

/** Releases the guard if this publish still holds it. */
export async function releaseGuard(table: Table, guardKey: Key, id: string): Promise<void> {
  await table.delete(guardKey, { expression: 'id = :me', values: { ':me': id } });
}

/**
 * Keeps a claim alive while a long upload runs. `lost()` says whether another publish took the
 * guard over; the abort signal fires when it did, so the upload stops.
 */
export function holdClaim(table: Table, guardKey: Key, id: string, now: () => number, leaseMs: number) {
  const abort = new AbortController();
  let lost: ConflictError | undefined;
  const markLost = () => {
    lost ??= takenOverError();
    abort.abort(lost);
  };
  const heartbeat = setInterval(() => {
    refreshClaim(table, guardKey, id, now).then(
      (held) => {
        if (!held) markLost();
      },
      () => undefined, // unreachable now; the record write will tell
    );
  }, leaseMs / 4);
  heartbeat.unref();
  return {
    signal: abort.signal,
    lost: () => lost,
    stop: () => clearInterval(heartbeat),
    /** Stops the heartbeat and checks the claim once more before the record is written. */
    async confirm(): Promise<void> {
      clearInterval(heartbeat);
      if (!lost && !(await refreshClaim(table, guardKey, id, now))) markLost();
      if (lost) throw lost;
    },
  };
}
