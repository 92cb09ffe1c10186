/**
 * Failure groups for failures recorded before groups existed (issue 13.2 on an upgraded cloud):
 * a device whose grant holds a failure outcome but no group joins the group of the error its
 * latest failed report carries ('' when that report kept none), as its report would have. Part of
 * `stats --backfill`: each device joins in one transaction conditional on its grant as read, so
 * running it twice, stopping it half way or reports arriving meanwhile never count a device twice.
 */
import type { UpdateRecord } from '#core/types.ts';
import { transactThroughConflicts } from '#functions/conflicts.ts';
import { type Item, type Table, transactionToken } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';
import { legacyFailureWrites, reasonDigest, reasonShard } from '#functions/report-ledger.ts';

/** Reads of a grant racing with its device's reports before giving that device up for this run. */
const GRANT_ATTEMPTS = 5;

const isUngroupedFailure = (grant: Item | undefined) =>
  grant?.outcome === 'failure' && typeof grant.failedReason !== 'string';

/** Each device's latest failed report of the update: its error text (as kept) and time. */
async function latestFailedReports(table: Table, updateId: string) {
  const latest = new Map<string, { error: string; at: string }>();
  for (const item of await table.query(keys.reportsOf(updateId).pk, undefined, true)) {
    if (item.success !== false) continue;
    const sk = String(item.sk);
    const device = sk.slice(0, sk.lastIndexOf('#'));
    const at = typeof item.at === 'string' ? item.at : '';
    if (at >= (latest.get(device)?.at ?? '')) {
      latest.set(device, { error: typeof item.error === 'string' ? item.error : '', at });
    }
  }
  return latest;
}

/** Puts one device into its failure group; true when this run did (false: done already, or moved on). */
async function groupFailure(
  table: Table,
  updateId: string,
  found: Item,
  report: { error: string; at: string } | undefined,
): Promise<boolean> {
  const error = report?.error ?? '';
  const device = String(found.sk);
  const reasonKey = keys.failureReason(updateId, reasonDigest(error), reasonShard(device));
  let grant: Item | undefined = found;
  for (let attempt = 0; attempt < GRANT_ATTEMPTS && isUngroupedFailure(grant); attempt++) {
    const at =
      typeof grant?.outcomeAt === 'string' ? grant.outcomeAt : (report?.at ?? new Date().toISOString());
    const lastAt = (await table.get(reasonKey, true))?.lastAt;
    const latest = typeof lastAt !== 'string' || lastAt < at;
    const writes = legacyFailureWrites(updateId, grant!, error, { at, latest });
    if ((await transactThroughConflicts(table, writes, transactionToken())).ok) return true;
    grant = await table.get(keys.grant(updateId, device), true);
  }
  return false;
}

/** Groups the ungrouped failures of `updates`; returns how many devices this run grouped. */
export async function backfillFailureReasons(
  table: Table,
  updates: readonly UpdateRecord[],
): Promise<number> {
  let grouped = 0;
  for (const update of updates) {
    const grants = await table.query(keys.grantsOf(update.id).pk, undefined, true);
    const ungrouped = grants.filter(isUngroupedFailure);
    if (ungrouped.length === 0) continue;
    const reports = await latestFailedReports(table, update.id);
    for (const grant of ungrouped) {
      if (await groupFailure(table, update.id, grant, reports.get(String(grant.sk)))) grouped++;
    }
  }
  return grouped;
}
