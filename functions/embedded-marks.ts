/**
 * Transaction marks of the embedded store (functions/embedded-transact.ts, embedded-batch.ts): an
 * update applied by transaction T sets the attribute `tx_<T>` and requires it absent, so sending it
 * again (a lost answer, a replay) applies it once. Marks matter only while T's intent exists; once
 * it is gone they are removed in the background, many per write (a mark left behind by a crash is
 * an attribute nobody reads).
 */
import type { Item, Key, Table, TransactWrite } from './dynamo.ts';

const MARK_SWEEP_MS = 1000;
/**
 * A transaction cut off by an error is replayed this long after, while the process lives: by then
 * a request cut off in flight has landed or died.
 */
export const REPLAY_DELAY_MS = 5000;

export type UpdateWrite = Extract<TransactWrite, { key: Key }>;

export const markOf = (token: string) => `tx_${token}`;

/** Where an item lives, across tables and stores (the in-process locks and maps key on it). */
export const itemName = (table: Table, key: Key) =>
  `${table.endpoint ?? ''}\u0000${table.name}\u0000${key.pk}\u0000${key.sk}`;

/**
 * Applies `write` once for transaction `token`; false when its own condition failed (not when an
 * earlier attempt applied it, which its mark tells).
 */
export async function applyMarked(table: Table, write: UpdateWrite, token: string): Promise<boolean> {
  const mark = markOf(token);
  const { condition } = write.update;
  const done = await table.update(write.key, {
    ...write.update,
    set: { ...write.update.set, [mark]: true },
    condition: `attribute_not_exists(#${mark})${condition ? ` AND (${condition})` : ''}`,
    idempotent: true,
  });
  if (done !== undefined) return true;
  const item: Item | undefined = await table.get(write.key, true);
  return item?.[mark] !== undefined;
}

/** Marks of committed transactions, per item, removed by one write per item every MARK_SWEEP_MS. */
const staleMarks = new Map<string, { table: Table; key: Key; marks: string[] }>();
let sweepTimer: NodeJS.Timeout | undefined;

export function removeMarksLater(table: Table, marked: readonly Key[], token: string): void {
  for (const key of marked) {
    const name = itemName(table, key);
    const entry = staleMarks.get(name) ?? { table, key, marks: [] };
    entry.marks.push(markOf(token));
    staleMarks.set(name, entry);
  }
  if (sweepTimer) return;
  sweepTimer = setTimeout(() => void sweepMarks(), MARK_SWEEP_MS);
  sweepTimer.unref();
}

async function sweepMarks(): Promise<void> {
  sweepTimer = undefined;
  const entries = [...staleMarks.values()];
  staleMarks.clear();
  for (const { table, key, marks } of entries) {
    // An update expression is at most 4 KB: 50 names of 35 characters fit.
    for (let at = 0; at < marks.length; at += 50) {
      const remove = marks.slice(at, at + 50);
      await table
        .update(key, { remove, condition: 'attribute_exists(pk)', idempotent: true })
        .catch(() => {}); // left behind: harmless, see above
    }
  }
}
