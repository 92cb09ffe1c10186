/**
 * Transactions on a store without TransactWriteItems (dynalite, the embedded local cloud): the
 * guarantee of DESIGN §5 (every write of a transaction or none, and a retry applied once) built
 * from single-item conditional writes.
 *
 * The protocol of `transactEmbedded(table, writes, token)`:
 * 1. Records to create (`put` writes) must not exist. This is checked first, under an in-process
 *    lock on their keys, so a duplicate (one device checking in twice at once) touches no counter.
 *    The lock is enough because the embedded store is served by one process, whose data dir is
 *    locked (local/cloud-file.ts); records are written by transactions only.
 * 2. The intent, the full list of writes, is stored under TX/<token> before any of them.
 * 3. Updates are applied first, then puts, each made idempotent by the transaction's mark: an
 *    update sets the attribute `tx_<token>` and requires it absent; a put stores `tx: <token>` and
 *    requires the item absent. A write whose condition failed is read back: carrying our mark, it
 *    was applied by an attempt whose answer was lost; otherwise its own condition failed, so the
 *    writes applied so far are undone (ADDs negated, `undoSet` restored, records deleted, each
 *    conditional on our mark) and the transaction is cancelled.
 * 4. Deleting the intent commits. The update marks are then removed in the background, many per
 *    write (they matter only while their intent exists; a mark left behind by a crash is an
 *    attribute nobody reads).
 * Puts come last, so a record becomes visible only with its counters: nobody reads a grant that
 * could still be undone. A failure between 2 and 4 leaves the intent; `replayIntent` rolls it
 * forward (3 again: the marks skip what was applied) and undoes it only when a write's own
 * condition fails now. It runs in the background while the process lives (after REPLAY_DELAY_MS,
 * so a request cut off in flight has landed or died; until then the transaction's records refuse
 * other transactions) and at start (`recoverIntents`, before the local cloud serves).
 * Marks are per transaction, so other transactions on the same counters never need to wait.
 */
import type { Item, Key, Scalar, Table, TransactResult, TransactWrite } from './dynamo.ts';
import { isRegistryBatch, replayRegistryBatch } from './embedded-batch.ts';
import {
  applyMarked,
  itemName,
  markOf,
  REPLAY_DELAY_MS,
  removeMarksLater,
  type UpdateWrite,
} from './embedded-marks.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';

const REPLAY_ATTEMPTS = 8;

const keyOf = (write: TransactWrite): Key =>
  'put' in write ? { pk: write.put.pk, sk: write.put.sk } : write.key;

/** In-process locks on record keys: each waiter chains on the previous holder. */
const held = new Map<string, Promise<void>>();

async function lock(name: string): Promise<() => void> {
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const previous = held.get(name);
  const tail = previous ? previous.then(() => mine) : mine;
  held.set(name, tail);
  await previous;
  return () => {
    release();
    if (held.get(name) === tail) held.delete(name);
  };
}

const recordNames = (table: Table, writes: readonly TransactWrite[]) =>
  writes
    .filter((w) => 'put' in w)
    .map((w) => itemName(table, keyOf(w)))
    .sort();

/**
 * Records of transactions cut off by an error, by lock name, until their intent is replayed: a
 * transaction writing one of them is refused (retried by the device) rather than built on a state
 * the replay is about to settle, e.g. a device's retried report that would take the report record.
 */
const recovering = new Map<string, string>();

async function lockRecords(table: Table, writes: readonly TransactWrite[]): Promise<() => void> {
  const names = recordNames(table, writes);
  const releases: (() => void)[] = [];
  for (const name of names) releases.push(await lock(name));
  const release = () => {
    for (const r of releases) r();
  };
  if (names.some((name) => recovering.has(name))) {
    release();
    throw new StoreUnavailableError('dynamodb');
  }
  return release;
}

export async function transactEmbedded(
  table: Table,
  writes: readonly TransactWrite[],
  token: string,
): Promise<TransactResult> {
  const release = await lockRecords(table, writes);
  try {
    for (const [i, write] of writes.entries()) {
      if ('put' in write && (await table.get(keyOf(write), true)) !== undefined)
        return { ok: false, failed: [i] };
    }
    await table.put({ ...keys.intent(token), writes: JSON.stringify(writes), at: new Date().toISOString() });
    return await applyAll(table, writes, token);
  } catch (err) {
    for (const name of recordNames(table, writes)) recovering.set(name, token);
    replayLater(table, token);
    throw err;
  } finally {
    release();
  }
}

async function applyAll(
  table: Table,
  writes: readonly TransactWrite[],
  token: string,
): Promise<TransactResult> {
  const order = [...writes.keys()].sort((a, b) => Number('put' in writes[a]!) - Number('put' in writes[b]!));
  const applied: number[] = [];
  for (const i of order) {
    if (!(await apply(table, writes[i]!, token))) {
      await undo(table, writes, applied, token);
      await table.delete(keys.intent(token));
      return { ok: false, failed: [i] };
    }
    applied.push(i);
  }
  await table.delete(keys.intent(token));
  removeMarksLater(
    table,
    writes.filter((w): w is UpdateWrite => !('put' in w)).map((w) => w.key),
    token,
  );
  return { ok: true };
}

/** Applies one write; false when its own condition failed (not when an earlier attempt applied it). */
async function apply(table: Table, write: TransactWrite, token: string): Promise<boolean> {
  if (!('put' in write)) return applyMarked(table, write, token);
  if (await table.put({ ...write.put, tx: token }, true)) return true;
  const item: Item | undefined = await table.get(keyOf(write), true);
  return item?.tx === token;
}

async function undo(
  table: Table,
  writes: readonly TransactWrite[],
  applied: readonly number[],
  token: string,
): Promise<void> {
  for (const i of [...applied].reverse()) {
    const write = writes[i]!;
    if ('put' in write) {
      await table.delete(keyOf(write), {
        expression: '#tx = :tx',
        names: { '#tx': 'tx' },
        values: { ':tx': token },
      });
      continue;
    }
    await table.update(write.key, undoSpec(write, markOf(token)));
  }
}

function undoSpec(write: UpdateWrite, mark: string) {
  const add = Object.fromEntries(Object.entries(write.update.add ?? {}).map(([name, n]) => [name, -n]));
  const set: Record<string, Scalar | undefined> = { ...write.undoSet, [mark]: undefined };
  return {
    ...(Object.keys(add).length ? { add } : {}),
    set,
    condition: `attribute_exists(#${mark})`,
    idempotent: true,
  };
}

/**
 * Finishes a transaction left by a failure. It is rolled forward (every write applied, as the
 * first attempt would have) and undone only when a write's own condition fails now: a write
 * already applied is visible, and another transaction may have built on it, e.g. a report of the
 * device moving on from the outcome it set; undoing it would take that one's base away.
 */
export async function replayIntent(table: Table, token: string): Promise<void> {
  const intent = await table.get(keys.intent(token), true);
  if (intent && isRegistryBatch(intent)) await replayRegistryBatch(table, intent);
  else if (intent) await applyAll(table, JSON.parse(String(intent.writes)) as TransactWrite[], token);
  endRecovery(token);
}

function endRecovery(token: string): void {
  for (const [name, owner] of recovering) if (owner === token) recovering.delete(name);
}

/**
 * Replays every transaction left in the table, registry batches (embedded-batch.ts) included: the
 * local cloud calls it at start, before serving.
 */
export async function recoverIntents(table: Table): Promise<number> {
  const intents = await table.query(keys.intents().pk, undefined, true);
  for (const intent of intents) await replayIntent(table, String(intent.sk));
  return intents.length;
}

const replaying = new Set<string>();

/** Replays `token` in the background until it succeeds (the store may be down for a while). */
function replayLater(table: Table, token: string, attempt = 0): void {
  if (attempt === 0 && replaying.has(token)) return;
  replaying.add(token);
  const timer = setTimeout(
    () => {
      replayIntent(table, token).then(
        () => replaying.delete(token),
        () => {
          if (attempt + 1 < REPLAY_ATTEMPTS) replayLater(table, token, attempt + 1);
          else {
            // Left for the replay at the next start; its records serve again meanwhile.
            replaying.delete(token);
            endRecovery(token);
          }
        },
      );
    },
    REPLAY_DELAY_MS * 2 ** Math.min(attempt, 4),
  );
  timer.unref();
}
