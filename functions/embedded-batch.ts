/**
 * Many devices' registry entries and their counts written together on the embedded store
 * (dynalite), with the guarantee of DESIGN §5: a device's entry and its counts change together or
 * not at all, and a retry, a replay or a crash never counts a device twice. The local cloud's
 * registry (functions/registry-rounds.ts) writes its counted changes this way, a round of many
 * devices at a time: about one store write per device instead of embedded-transact.ts's four.
 *
 * The protocol of `commitRegistryBatch(table, entries, token)`; each entry is a registry update,
 * conditional on the counted state it was planned against, and the count writes of its change:
 * 1. The intent, every entry with its count writes, is stored under TX/<token> before any write.
 * 2. Each entry is written under its own condition, with `batchTx: <token>`. One whose condition
 *    fails (another writer moved the device since it was read) is left out: the batch goes on
 *    without it, its counts are not written, and the caller retries it against the entry as stored
 *    then. A failed condition is read back: carrying our batchTx, the entry was written by an
 *    attempt whose answer was lost. An entry with counts moves the counted state its condition
 *    requires, so it is written once however often it is sent.
 * 3. When some entry was left out, the indexes of the written ones are stored on the intent: the
 *    decision. From here on the set of counted devices is fixed.
 * 4. The count writes of the written entries are merged (`mergeCounts`): one update per product
 *    and kind of counter (version counts, a day's devices) on the shard of its first write, applied
 *    with the transaction's mark (embedded-marks.ts) so that each applies once. Counts are summed
 *    over shards on read, and the embedded store has no per-item write limit to spread writes for.
 * 5. Deleting the intent commits; the marks are removed in the background.
 * Nothing is ever undone: an entry is written only with its counts to follow, and a left-out entry
 * changed nothing. A failure after 1 leaves the intent; `replayRegistryBatch` settles it. With a
 * decision it writes the counts of the decided entries (4, 5). Without one, either no count was
 * written yet or every entry was: it writes every entry again (2: those written already fail their
 * condition and carry our batchTx), which finds the same set in the second case, and goes on from
 * there. Until then the batch's devices refuse other changes in this process (`isSettling`), so no
 * entry's batchTx is overwritten before the replay reads it. The replay runs in the background
 * while the process lives (after REPLAY_DELAY_MS, until it succeeds) and at start (`recoverIntents`
 * of embedded-transact.ts, before the local cloud serves).
 */
import type { Item, Key, Scalar, Table, UpdateSpec } from './dynamo.ts';
import {
  applyMarked,
  itemName,
  REPLAY_DELAY_MS,
  removeMarksLater,
  type UpdateWrite,
} from './embedded-marks.ts';
import { keys } from './keys.ts';

/** One device's change: its registry entry's conditional update and the count writes it carries. */
export interface BatchedEntry {
  readonly key: Key;
  readonly update: UpdateSpec;
  readonly counts: readonly UpdateWrite[];
}

/** A batch's intent holds its entries: at most this many bytes of them (an item is at most 400 KB). */
export const BATCH_INTENT_BYTES = 300_000;
/** The attribute of an entry naming the batch that wrote it last. */
const BATCH_TX = 'batchTx';
const REPLAY_MAX_DELAY_MS = 60_000;

export const isRegistryBatch = (intent: Item) => typeof intent.batch === 'string';

/** Devices of batches cut off by an error, by item name, until their intent is settled. */
const unsettled = new Map<string, string>();
/** Batches being written or replayed in this process, by token. */
const settling = new Map<string, Promise<unknown>>();

/** Whether `key` belongs to a batch cut off by an error and not settled yet: refuse to change it. */
export const isSettling = (table: Table, key: Key) => unsettled.has(itemName(table, key));

/** Writes `entries` with their counts (see above); which of them were written, by index. */
export async function commitRegistryBatch(
  table: Table,
  entries: readonly BatchedEntry[],
  token: string,
): Promise<boolean[]> {
  if (!entries.some((entry) => entry.counts.length > 0)) return writeEntries(table, entries, token);
  const committed = (async () => {
    try {
      await table.put({
        ...keys.intent(token),
        batch: JSON.stringify(entries),
        at: new Date().toISOString(),
      });
      return await settle(table, token, entries, undefined);
    } catch (err) {
      for (const entry of entries) unsettled.set(itemName(table, entry.key), token);
      replayLater(table, token);
      throw err;
    }
  })();
  settling.set(token, committed);
  try {
    return await committed;
  } finally {
    settling.delete(token);
  }
}

/** Steps 2 to 5: `decided`, the indexes of the entries written, when the intent holds them. */
async function settle(
  table: Table,
  token: string,
  entries: readonly BatchedEntry[],
  decided: readonly number[] | undefined,
): Promise<boolean[]> {
  let written = decided ? entries.map((_, i) => decided.includes(i)) : undefined;
  if (!written) {
    written = await writeEntries(table, entries, token);
    const indexes = written.flatMap((ok, i) => (ok ? [i] : []));
    if (indexes.length < entries.length) {
      const decision = { set: { applied: JSON.stringify(indexes) }, condition: 'attribute_exists(pk)' };
      // Gone: settled meanwhile by another replay, which wrote the counts.
      if (!(await table.update(keys.intent(token), { ...decision, idempotent: true }))) return written;
    }
  }
  const counts = mergeCounts(entries.flatMap((entry, i) => (written[i] ? entry.counts : [])));
  await allOrThrow(counts.map((write) => applyMarked(table, write, token)));
  await table.delete(keys.intent(token));
  removeMarksLater(
    table,
    counts.map((write) => write.key),
    token,
  );
  return written;
}

/** Step 2: every entry under its condition, at once; which were written (now or by a lost attempt). */
function writeEntries(table: Table, entries: readonly BatchedEntry[], token: string): Promise<boolean[]> {
  return allOrThrow(
    entries.map(async ({ key, update }) => {
      const set = { ...update.set, [BATCH_TX]: token };
      if (await table.update(key, { ...update, set, idempotent: true })) return true;
      return (await table.get(key, true))?.[BATCH_TX] === token;
    }),
  );
}

/** Like Promise.all, but throws only once every write has settled: none is left in flight. */
async function allOrThrow<T>(work: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * The count writes of many devices, merged: one update per product and kind of counter (the
 * version counts `D#<shard>`, a day's `Y#<day>#<shard>`...) on the shard of the first write of that
 * kind, since counts are summed over shards on read. ADDs are summed (zeros dropped), SETs are
 * latest sightings and expiry times (the latest wins), REMOVEs kept unless the update writes that
 * attribute.
 */
export function mergeCounts(writes: readonly UpdateWrite[]): UpdateWrite[] {
  const merged = new Map<string, { key: Key; add: Record<string, number>; set: Record<string, Scalar> }>();
  const removed = new Map<string, Set<string>>();
  for (const { key, update } of writes) {
    const kind = `${key.pk}\u0000${key.sk.replace(/#\d+$/, '')}`;
    const into = merged.get(kind) ?? { key, add: {}, set: {} };
    merged.set(kind, into);
    for (const [name, n] of Object.entries(update.add ?? {})) into.add[name] = (into.add[name] ?? 0) + n;
    for (const [name, value] of Object.entries(update.set ?? {}))
      if (value !== undefined) into.set[name] = later(into.set[name], value);
    const remove = removed.get(kind) ?? new Set<string>();
    removed.set(kind, remove);
    for (const name of update.remove ?? []) remove.add(name);
  }
  return [...merged].map(([kind, { key, add, set }]) => {
    const adds = Object.fromEntries(Object.entries(add).filter(([, n]) => n !== 0));
    const remove = [...(removed.get(kind) ?? [])].filter((name) => !(name in adds) && !(name in set));
    return { key, update: { add: adds, set, remove } };
  });
}

function later(kept: Scalar | undefined, value: Scalar): Scalar {
  if (kept === undefined || kept === null) return value;
  if (typeof kept === 'number' && typeof value === 'number') return Math.max(kept, value);
  return String(value) > String(kept) ? value : kept;
}

/**
 * Settles a batch left by a failure (see above). A batch still being written in this process is
 * waited for instead: it settles itself, or leaves its intent to the replay in the background.
 */
export async function replayRegistryBatch(table: Table, intent: Item): Promise<void> {
  const token = String(intent.sk);
  const running = settling.get(token);
  if (running) {
    await running.catch(() => {});
    return;
  }
  const replay = (async () => {
    const entries = JSON.parse(String(intent.batch)) as BatchedEntry[];
    const decided = typeof intent.applied === 'string' ? (JSON.parse(intent.applied) as number[]) : undefined;
    await settle(table, token, entries, decided);
  })();
  settling.set(token, replay);
  try {
    await replay;
    endUnsettled(token);
  } finally {
    settling.delete(token);
  }
}

/** Replays `token` in the background until it is settled (the store may be down for a while). */
function replayLater(table: Table, token: string, attempt = 0): void {
  const delay = Math.min(REPLAY_DELAY_MS * 2 ** attempt, REPLAY_MAX_DELAY_MS);
  const timer = setTimeout(async () => {
    try {
      const intent = await table.get(keys.intent(token), true);
      if (intent) await replayRegistryBatch(table, intent);
      else endUnsettled(token); // never stored, or settled by recoverIntents meanwhile
    } catch {
      // The store is still unreachable: tried again below.
    }
    if ([...unsettled.values()].includes(token)) replayLater(table, token, attempt + 1);
  }, delay);
  timer.unref();
}

function endUnsettled(token: string): void {
  for (const [name, owner] of unsettled) if (owner === token) unsettled.delete(name);
}
