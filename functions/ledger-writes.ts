/**
 * The transactions of the rollout and report ledgers (DESIGN §5): each counter is written together
 * with the record that justifies it, through Table.transact.
 */
import { randomUUID } from 'node:crypto';
import type { DeviceReport, UpdateRecord } from '#core/types.ts';
import type { Item, TransactWrite } from './dynamo.ts';
import { keys } from './keys.ts';

/** Identifies one transaction: DynamoDB's ClientRequestToken (≤ 36 characters), a safe attribute-name part. */
export function transactionToken(): string {
  return randomUUID().replaceAll('-', '');
}

export interface RateWindowSlot {
  readonly index: number;
  readonly expiresAt: number;
}

/**
 * A grant: `started` (under the limit, if any), the rate window's count (under the rate) and last
 * the grant record, which must not exist. Index 0 is the update, the last index the grant.
 */
export function grantWrites(
  update: UpdateRecord,
  deviceId: string,
  window: RateWindowSlot | undefined,
  at: number,
): TransactWrite[] {
  const limited = update.limit !== undefined;
  const started: TransactWrite = {
    key: keys.update(update.product, update.id),
    update: {
      add: { started: 1 },
      condition: limited
        ? 'attribute_exists(pk) AND (attribute_not_exists(#started) OR #started < :limit)'
        : 'attribute_exists(pk)',
      ...(limited ? { values: { ':limit': update.limit ?? 0 } } : {}),
    },
  };
  const slot: TransactWrite[] = window
    ? [
        {
          key: keys.rateWindow(update.id, window.index),
          update: {
            add: { n: 1 },
            set: { expires: Math.ceil(window.expiresAt / 1000) },
            condition: 'attribute_not_exists(#n) OR #n < :rate',
            values: { ':rate': update.rate ?? 0 },
          },
        },
      ]
    : [];
  return [started, ...slot, { put: { ...keys.grant(update.id, deviceId), at: new Date(at).toISOString() } }];
}

export type Outcome = 'success' | 'failure';

/** The outcome a grant record holds, null before the device reported one, and its version. */
export function outcomeOf(grant: Item | undefined): { outcome: Outcome | null; version: number } {
  const outcome = grant?.outcome === 'success' || grant?.outcome === 'failure' ? grant.outcome : null;
  return { outcome, version: typeof grant?.outcomeVersion === 'number' ? grant.outcomeVersion : 0 };
}

/** Report records, one per (device, update, status). */
export function reportRecord(report: DeviceReport, at: number) {
  return {
    ...keys.report(report.update, report.id, report.status),
    success: report.success,
    error: report.error,
    version: report.version,
    at: new Date(at).toISOString(),
  };
}

/**
 * A device's outcome moving from `previous` (read at `version`) to `next`: the grant's outcome
 * (conditional on that version, so concurrent reports move it once each), the counters, and the
 * report record, which must not exist. Indexes: 0 grant, 1 update, 2 report.
 */
export function outcomeWrites(
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
