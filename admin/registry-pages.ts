/**
 * Reading a product's device registry a page at a time, resumable with an opaque cursor: the
 * base64url of DynamoDB's LastEvaluatedKey (the key of the last device read). Devices are read in
 * id order, so a walk resumed from a cursor visits each device that existed when it started once,
 * however many are added meanwhile. Shared by the device list and the policy dry run.
 */
import { isValidId } from '#core/device.ts';
import { ValidationError } from '#core/errors.ts';
import type { DeviceCheckin, DeviceObject } from '#core/types.ts';
import type { Item, Key, Table } from '#functions/dynamo.ts';
import { keys } from '#functions/keys.ts';

/** A registry entry as a checkin: its id, product, version and the properties it sent. */
export function deviceOfEntry(product: string, item: Item): DeviceCheckin {
  return { id: String(item.sk), product, version: String(item.version), body: propertiesOf(item) };
}

export function propertiesOf(item: Item): DeviceObject {
  if (typeof item.properties !== 'string') return {};
  try {
    const body: unknown = JSON.parse(item.properties);
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as DeviceObject) : {};
  } catch {
    return {};
  }
}

/** The cursor that resumes a walk after `key`. */
export function encodeCursor(key: Key): string {
  const attributes = { pk: { S: key.pk }, sk: { S: key.sk } };
  return Buffer.from(JSON.stringify(attributes)).toString('base64url');
}

/** The registry key a cursor resumes after; a cursor not made for this product's registry is refused. */
export function decodeCursor(cursor: string, product: string): Key {
  return decodeKeyCursor(
    cursor,
    keys.devicesOf(product).pk,
    'pass the cursor a previous page printed, unchanged, with the same --product',
  );
}

/**
 * The key a cursor resumes after, when it is one of partition `pk` and names a device id (the sort
 * key of the registry and of an update's grants); otherwise a ValidationError that ends with
 * `advice` (what to pass instead). A forged key DynamoDB would refuse (a sort key over 1 KiB)
 * thus answers 400 here, not 500 from the table.
 */
export function decodeKeyCursor(cursor: string, pk: string, advice: string): Key {
  const refuse = () => new ValidationError(`Invalid --next cursor "${cursor.slice(0, 40)}": ${advice}`);
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw refuse();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const attrs = parsed as { pk?: { S?: unknown }; sk?: { S?: unknown } } | null;
  const sk = attrs?.sk?.S;
  if (
    typeof attrs !== 'object' ||
    Object.keys(attrs ?? {}).length !== 2 ||
    attrs?.pk?.S !== pk ||
    typeof sk !== 'string' ||
    !isValidId(sk)
  )
    throw refuse();
  return { pk, sk };
}

/** One page of a product's registry after `start`. */
export function registryPage(
  table: Table,
  product: string,
  limit: number,
  start: Key | undefined,
): Promise<{ items: Item[]; next?: Key }> {
  return table.queryPage(keys.devicesOf(product).pk, { limit, ...(start ? { start } : {}) });
}
