/**
 * The report ledger: reports stored once per (device, update, status), and each device's one
 * outcome per update, kept on its grant record, behind the update's success and failure counters.
 * Failures are grouped by reason as they are recorded (a count per reason and its devices, newest
 * first), so reading them never scans the reports; each device's last outcome is kept for the
 * device list.
 */
import { createHash } from 'node:crypto';
import type { DeviceReport, UpdateCounters, UpdateRecord } from '#core/types.ts';
import { transactThroughConflicts } from './conflicts.ts';
import { type Item, type Table, type TransactWrite, transactionToken } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';
import { counterShardWrite, readUpdate } from './update-counters.ts';

/** Reports of one device racing to move its outcome: each loses at most this many times. */
const OUTCOME_ATTEMPTS = 3;

type Outcome = 'success' | 'failure';

export class ReportLedger {
  constructor(
    private readonly table: Table,
    private readonly now: () => number,
  ) {}

  /**
   * Stores a report once per (device, update, status). A report whose outcome differs from the
   * device's recorded one moves the device's count (a retry that succeeds moves a failure to a
   * success) in the same transaction as the report record and the grant's outcome (DESIGN §5),
   * conditional on the outcome's version as read, so concurrent reports of one device move it once
   * each. `changed`: the counters moved; `not-granted`: no grant record; `deleted`: the update is gone.
   */
  async record(
    update: UpdateRecord,
    report: DeviceReport,
    success: boolean | undefined,
  ): Promise<'changed' | 'unchanged' | 'not-granted' | 'deleted'> {
    const grantKey = keys.grant(update.id, report.id);
    const next = success === undefined ? null : success ? 'success' : 'failure';
    for (let attempt = 0; attempt < OUTCOME_ATTEMPTS; attempt++) {
      const grant = next === null ? undefined : await this.table.get(grantKey, true);
      if (next !== null && !grant) return 'not-granted';
      const from = outcomeOf(grant);
      if (next === null) {
        await this.table.put(reportRecord(report, this.now()), true);
        return 'unchanged';
      }
      if (next === from.outcome) {
        // A transaction too: on the embedded store the outcome read may be another report's
        // transaction still under way, whose own report record (this one) must not be taken
        // from under it, or that transaction is undone and this device's outcome lost.
        await this.table.transact([{ put: reportRecord(report, this.now()) }], transactionToken());
        return 'unchanged';
      }
      const writes = outcomeWrites(update, report, from, next, this.now());
      const result = await transactThroughConflicts(this.table, writes, transactionToken());
      if (result.ok) return 'changed';
      if (result.failed.includes(2)) return 'unchanged'; // the same report again
      if (result.failed.includes(1)) return 'deleted';
      // Another report of this device moved its outcome since the read: read it again.
    }
    throw new StoreUnavailableError('dynamodb');
  }

  /** The update's counters as stored now, summed over its shards (auto-abort decides on them). */
  async countersOf(update: UpdateRecord): Promise<UpdateCounters | undefined> {
    return (await readUpdate(this.table, update.product, update.id))?.counters;
  }
}

/** A device's outcome as its grant record holds it; `failedIn` names its failure group, if any. */
interface RecordedOutcome {
  readonly outcome: Outcome | null;
  readonly version: number;
  readonly grant: Item | undefined;
  readonly failedIn?: { readonly reason: string; readonly at: string };
}

/** The outcome a grant record holds, null before the device reported one, and its version. */
function outcomeOf(grant: Item | undefined): RecordedOutcome {
  const outcome = grant?.outcome === 'success' || grant?.outcome === 'failure' ? grant.outcome : null;
  const version = typeof grant?.outcomeVersion === 'number' ? grant.outcomeVersion : 0;
  const { failedReason, failedAt } = grant ?? {};
  if (outcome !== 'failure' || typeof failedReason !== 'string' || typeof failedAt !== 'string')
    return { outcome, version, grant };
  return { outcome, version, grant, failedIn: { reason: failedReason, at: failedAt } };
}

/** Failures group by their error text as sent; the digest keeps keys short (errors are ≤ 1 KiB). */
export function reasonDigest(error: string): string {
  return createHash('sha256').update(error).digest('hex').slice(0, 24);
}

/**
 * A failure reason's count and devices are split over this many items, summed on read: a whole
 * fleet failing the same way at once (1,000+ reports/s) stays within one item's write rate and
 * does not make concurrent transactions conflict on one item.
 */
export const REASON_SHARDS = 8;

/** The shard a device counts in: always the same, so leaving a group finds the shard it joined. */
export function reasonShard(deviceId: string): number {
  return createHash('sha256').update(deviceId).digest()[0]! % REASON_SHARDS;
}

function reportRecord(report: DeviceReport, at: number) {
  return {
    ...keys.report(report.update, report.id, report.status),
    success: report.success,
    error: report.error,
    version: report.version,
    at: new Date(at).toISOString(),
  };
}

const GRANT_OUTCOME_FIELDS = ['outcome', 'outcomeVersion', 'outcomeAt', 'error', 'failedReason', 'failedAt'];

/**
 * A device's outcome moving from `from` to `next`: the grant's outcome (conditional on the version
 * read), the counters (the device's shard of them: at a 100% rollout every device reports), and
 * the report record, which must not exist. Indexes: 0 grant, 1 counters, 2 report. Then,
 * unconditional (so nothing after them can cancel the transaction): leaving the device's failure
 * group, joining the new one, and the device's last outcome.
 */
function outcomeWrites(
  update: UpdateRecord,
  report: DeviceReport,
  from: RecordedOutcome,
  next: Outcome,
  at: number,
): TransactWrite[] {
  const time = new Date(at).toISOString();
  const error = report.error ?? '';
  const reason = next === 'failure' ? reasonDigest(error) : undefined;
  const shard = reasonShard(report.id);
  // The version as read (0 when absent): the next attempt's condition compares with it.
  const undoSet = {
    ...Object.fromEntries(GRANT_OUTCOME_FIELDS.map((f) => [f, from.grant?.[f] ?? null])),
    outcomeVersion: from.version,
  };
  const leave: TransactWrite[] = from.failedIn
    ? [
        { key: keys.failureReason(update.id, from.failedIn.reason, shard), update: { add: { count: -1 } } },
        {
          key: keys.failedDevice(update.id, from.failedIn.reason, shard, from.failedIn.at, report.id),
          update: { set: { left: time } },
        },
      ]
    : [];
  const join: TransactWrite[] = reason
    ? [
        {
          key: keys.failureReason(update.id, reason, shard),
          update: { add: { count: 1 }, set: { error, lastAt: time } },
        },
        {
          put: {
            ...keys.failedDevice(update.id, reason, shard, time, report.id),
            device: report.id,
            at: time,
          },
        },
      ]
    : [];
  return [
    {
      key: keys.grant(update.id, report.id),
      update: {
        set: {
          outcome: next,
          outcomeVersion: from.version + 1,
          outcomeAt: time,
          error: reason ? error : undefined,
          failedReason: reason,
          failedAt: reason ? time : undefined,
        },
        condition: 'attribute_exists(pk) AND (attribute_not_exists(#outcomeVersion) OR #outcomeVersion = :v)',
        values: { ':v': from.version },
      },
      undoSet,
    },
    counterShardWrite(update, report.id, { [next]: 1, ...(from.outcome ? { [from.outcome]: -1 } : {}) }),
    { put: reportRecord(report, at) },
    ...leave,
    ...join,
    {
      key: keys.deviceLastUpdate(update.product, report.id),
      update: { set: { update: update.id, version: update.version, outcome: next, at: time } },
    },
  ];
}

/**
 * The writes that put a device's failure recorded before failure groups existed (its grant holds
 * the outcome but no group) into its reason's group, as its report would have: the grant's group
 * fields with a new outcome version, conditional on the version read (a report racing with it
 * reads the grant again, finds the group and leaves it), the reason's count, and the device in the
 * group. `lastAt`: set only when it is the reason's latest failure (the caller read the group).
 * Index 0 is the grant.
 */
export function legacyFailureWrites(
  updateId: string,
  grant: Item,
  error: string,
  failure: { readonly at: string; readonly latest: boolean },
): TransactWrite[] {
  const deviceId = String(grant.sk);
  const reason = reasonDigest(error);
  const shard = reasonShard(deviceId);
  const version = typeof grant.outcomeVersion === 'number' ? grant.outcomeVersion : 0;
  return [
    {
      key: keys.grant(updateId, deviceId),
      update: {
        set: { outcomeVersion: version + 1, error, failedReason: reason, failedAt: failure.at },
        condition: '#outcome = :failure AND (attribute_not_exists(#outcomeVersion) OR #outcomeVersion = :v)',
        names: { '#outcome': 'outcome' },
        values: { ':failure': 'failure', ':v': version },
      },
      undoSet: { outcomeVersion: version, error: grant.error ?? null, failedReason: null, failedAt: null },
    },
    {
      key: keys.failureReason(updateId, reason, shard),
      update: { add: { count: 1 }, set: { error, ...(failure.latest ? { lastAt: failure.at } : {}) } },
    },
    {
      put: {
        ...keys.failedDevice(updateId, reason, shard, failure.at, deviceId),
        device: deviceId,
        at: failure.at,
      },
    },
  ];
}
