/** Conversions between stored items and domain records. One place, so the CLI and cloud agree. */
import type { UpdateRecord } from '#core/types.ts';
import type { Item, Scalar } from './dynamo.ts';
import { keys } from './keys.ts';

const str = (v: Scalar | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: Scalar | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

export function updateFromItem(item: Item): UpdateRecord {
  return {
    id: String(item.id),
    product: String(item.product),
    version: String(item.version),
    policy: str(item.policy) ?? '',
    description: str(item.description) ?? '',
    enabled: item.enabled !== false,
    paused: item.paused === true,
    pauseReason: str(item.pauseReason),
    allowDowngrade: item.allowDowngrade === true,
    key: String(item.key),
    checksum: String(item.checksum),
    size: num(item.size) ?? 0,
    signature: str(item.signature),
    created: String(item.created),
    percentage: num(item.percentage),
    limit: num(item.limit),
    rate: num(item.rate),
    period: num(item.period),
    abortThreshold: num(item.abortThreshold),
    abortMin: num(item.abortMin),
    phases: str(item.phases),
    gate: str(item.gate),
    startAt: str(item.startAt),
    phase: num(item.phase),
    retry: num(item.retry),
    counters: {
      started: num(item.started) ?? 0,
      success: num(item.success) ?? 0,
      failure: num(item.failure) ?? 0,
      deferred: num(item.deferred) ?? 0,
    },
  };
}

export function updateToItem(
  u: UpdateRecord,
): ReturnType<typeof keys.update> & Record<string, Scalar | undefined> {
  const { counters, ...fields } = u;
  return { ...keys.update(u.product, u.id), ...fields, ...counters };
}
