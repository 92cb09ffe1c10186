/**
 * The report ledger: reports stored once per (device, update, status), and each device's one
 * outcome per update, kept on its grant record, behind the update's success and failure counters.
 */
import type { DeviceReport, UpdateCounters, UpdateRecord } from '#core/types.ts';
import { type Item, type Table, type TransactWrite, transactionToken } from './dynamo.ts';
import { StoreUnavailableError } from './errors.ts';
import { keys } from './keys.ts';
import { updateFromItem } from './records.ts';

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
      const result = await this.table.transact(
        outcomeWrites(update, report, from, next, this.now()),
        transactionToken(),
      );
      if (result.ok) return 'changed';
      if (result.failed.includes(2)) return 'unchanged'; // the same report again
      if (result.failed.includes(1)) return 'deleted';
      // Another report of this device moved its outcome since the read: read it again.
    }
    throw new StoreUnavailableError('dynamodb');
  }

  /** The update's counters as stored now (auto-abort decides on them). */
  async countersOf(update: UpdateRecord): Promise<UpdateCounters | undefined> {
    const item = await this.table.get(keys.update(update.product, update.id), true);
    return item ? updateFromItem(item).counters : undefined;
  }
}

/** The outcome a grant record holds, null before the device reported one, and its version. */
function outcomeOf(grant: Item | undefined): { outcome: Outcome | null; version: number } {
  const outcome = grant?.outcome === 'success' || grant?.outcome === 'failure' ? grant.outcome : null;
  return { outcome, version: typeof grant?.outcomeVersion === 'number' ? grant.outcomeVersion : 0 };
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

/**
 * A device's outcome moving from `from` to `next`: the grant's outcome (conditional on the version
 * read), the counters, and the report record, which must not exist. Indexes: 0 grant, 1 update,
 * 2 report.
 */
function outcomeWrites(
  update: UpdateRecord,
  report: DeviceReport,
  from: { outcome: Outcome | null; version: number },
  next: Outcome,
  at: number,
): TransactWrite[] {
  return [
    {
      key: keys.grant(update.id, report.id),
      update: {
        set: { outcome: next, outcomeVersion: from.version + 1 },
        condition: 'attribute_exists(pk) AND (attribute_not_exists(#outcomeVersion) OR #outcomeVersion = :v)',
        values: { ':v': from.version },
      },
      undoSet: { outcome: from.outcome, outcomeVersion: from.version },
    },
    {
      key: keys.update(update.product, update.id),
      update: {
        add: { [next]: 1, ...(from.outcome ? { [from.outcome]: -1 } : {}) },
        condition: 'attribute_exists(pk)',
      },
    },
    { put: reportRecord(report, at) },
  ];
}
