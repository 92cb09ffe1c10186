/**
 * Why an update failed: its failures grouped by the error text devices sent, with counts and the
 * latest devices of each group. The report ledger keeps the groups as reports arrive
 * (functions/report-ledger.ts), so this reads the groups (each a few shards), never the reports.
 */
import type { UpdateRecord } from '#core/types.ts';
import type { Item, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { REASON_SHARDS } from '#functions/report-ledger.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation } from './errors.ts';
import { showUpdate, type UpdateSelector } from './updates.ts';

export interface FailureReason {
  /** The error text as the devices sent it ('' when they sent none). */
  readonly error: string;
  /** Devices whose outcome is a failure with this error. */
  readonly devices: number;
  /** The latest failure of this kind (ISO 8601). */
  readonly lastAt: string;
  /** Up to `latest` devices, most recent first. */
  readonly latest: readonly { readonly id: string; readonly at: string }[];
}

export interface UpdateFailures {
  readonly update: UpdateRecord;
  /** Most devices first. */
  readonly reasons: readonly FailureReason[];
}

/** Reads at most this many members per shard of a reason looking for the latest ones still failing. */
const MEMBER_READ_BOUND = 50;
/** Latest devices are listed for this many reasons (the most common). */
const LATEST_FOR_REASONS = 20;

type Member = { readonly id: string; readonly at: string };

/** The latest `count` devices of one shard of a reason that still fail, newest first. */
async function latestInShard(table: Table, updateId: string, digest: string, shard: number, count: number) {
  const found: Member[] = [];
  let start: { pk: string; sk: string } | undefined;
  let read = 0;
  do {
    const page = await table.queryPage(keys.failedDevicesOf(updateId, digest, shard).pk, {
      limit: count * 2,
      descending: true,
      ...(start ? { start } : {}),
    });
    read += page.items.length;
    for (const item of page.items) {
      // Devices that later succeeded stay in the index, marked: skip them.
      if (typeof item.left !== 'string' && found.length < count)
        found.push({ id: String(item.device), at: String(item.at) });
    }
    start = page.next;
  } while (start && found.length < count && read < MEMBER_READ_BOUND);
  return found;
}

async function latestDevices(table: Table, updateId: string, digest: string, count: number) {
  const shards = await Promise.all(
    Array.from({ length: REASON_SHARDS }, (_, shard) => latestInShard(table, updateId, digest, shard, count)),
  );
  return shards
    .flat()
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
    .slice(0, count);
}

interface ReasonGroup {
  digest: string;
  error: string;
  devices: number;
  lastAt: string;
}

/** A reason's shards summed: its count, error text and latest failure. */
function groupsOf(items: readonly Item[]): ReasonGroup[] {
  const groups = new Map<string, ReasonGroup>();
  for (const item of items) {
    const digest = String(item.sk).split('#')[0] ?? '';
    const group = groups.get(digest) ?? { digest, error: '', devices: 0, lastAt: '' };
    group.devices += typeof item.count === 'number' ? item.count : 0;
    if (typeof item.error === 'string') group.error = item.error;
    if (typeof item.lastAt === 'string' && item.lastAt > group.lastAt) group.lastAt = item.lastAt;
    groups.set(digest, group);
  }
  return [...groups.values()]
    .filter((g) => g.devices > 0)
    .sort((a, b) => b.devices - a.devices || (a.lastAt < b.lastAt ? 1 : a.lastAt > b.lastAt ? -1 : 0));
}

/** The failure reasons of one update, most devices first; `latest` devices per reason (default 5). */
export async function failureReasonsOf(
  table: Table,
  update: UpdateRecord,
  latest = 5,
): Promise<FailureReason[]> {
  const groups = groupsOf(await table.query(keys.failureReasonsOf(update.id).pk));
  return Promise.all(
    groups.map(async ({ digest, ...group }, i) => ({
      ...group,
      // Devices of the most common reasons only: an update may fail in many ways.
      latest: i < LATEST_FOR_REASONS ? await latestDevices(table, update.id, digest, latest) : [],
    })),
  );
}

/** The update named and its failures grouped by reason. */
export function updateFailures(cloud: CloudRecords, selector: UpdateSelector): Promise<UpdateFailures> {
  return adminOperation(cloud.store, async () => {
    const update = await showUpdate(cloud, selector);
    return { update, reasons: await failureReasonsOf(cloud.table, update) };
  });
}
