/**
 * Why an update failed: its failures grouped by the error text devices sent, with counts and the
 * latest devices of each group. The report ledger keeps the groups as reports arrive
 * (functions/report-ledger.ts), so this reads the groups, never the reports.
 */
import type { UpdateRecord } from '#core/types.ts';
import type { Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
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

/** Reads at most this many group members per reason looking for the latest ones still failing. */
const MEMBER_READ_BOUND = 100;
/** Latest devices are listed for this many reasons (the most common). */
const LATEST_FOR_REASONS = 20;

async function latestDevices(table: Table, updateId: string, digest: string, count: number) {
  const found: { id: string; at: string }[] = [];
  let start: { pk: string; sk: string } | undefined;
  let read = 0;
  do {
    const page = await table.queryPage(keys.failedDevicesOf(updateId, digest).pk, {
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

/** The failure reasons of one update, most devices first; `latest` devices per reason (default 5). */
export async function failureReasonsOf(
  table: Table,
  update: UpdateRecord,
  latest = 5,
): Promise<FailureReason[]> {
  const groups = (await table.query(keys.failureReasonsOf(update.id).pk))
    .filter((g) => typeof g.count === 'number' && g.count > 0)
    .sort((a, b) => Number(b.count) - Number(a.count) || (String(a.lastAt) < String(b.lastAt) ? 1 : -1));
  return Promise.all(
    groups.map(async (g, i) => ({
      error: typeof g.error === 'string' ? g.error : '',
      devices: Number(g.count),
      lastAt: String(g.lastAt),
      // Devices of the most common reasons only: an update may fail in many ways.
      latest: i < LATEST_FOR_REASONS ? await latestDevices(table, update.id, String(g.sk), latest) : [],
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
