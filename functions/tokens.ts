/** Device tokens: generated once, shown once, stored only as sha256 hashes (DESIGN §5). */
import { randomBytes } from 'node:crypto';
import type { Table } from './dynamo.ts';
import { keys } from './keys.ts';
import { hashToken } from './token-scopes.ts';

export interface TokenInfo {
  /** First characters of the hash: enough to name a token in `token list` / `token revoke`. */
  readonly id: string;
  readonly product: string;
  readonly device?: string;
  readonly description?: string;
  readonly created: string;
}

const TOKEN_ID_LENGTH = 12;

/** Creates a token for a product (and optionally one device); returns the secret, which is not stored. */
export async function createToken(
  table: Table,
  scope: { product: string; device?: string; description?: string },
): Promise<{ token: string; info: TokenInfo }> {
  const token = `udt_${randomBytes(24).toString('base64url')}`;
  const hash = hashToken(token);
  const info: TokenInfo = { id: hash.slice(0, TOKEN_ID_LENGTH), created: new Date().toISOString(), ...scope };
  await table.put({ ...keys.token(hash), ...info }, true);
  return { token, info };
}

export async function listTokens(table: Table): Promise<TokenInfo[]> {
  const items = await table.query(keys.tokens().pk);
  return items.map((i) => ({
    id: String(i.sk).slice(0, TOKEN_ID_LENGTH),
    product: String(i.product),
    ...(typeof i.device === 'string' ? { device: i.device } : {}),
    ...(typeof i.description === 'string' ? { description: i.description } : {}),
    created: String(i.created),
  }));
}

/** Revokes the token whose hash starts with `id`; false when none or several match. */
export async function revokeToken(table: Table, id: string): Promise<boolean> {
  const items = await table.query(keys.tokens().pk, id);
  if (items.length !== 1) return false;
  return table.delete({ pk: keys.tokens().pk, sk: String(items[0]!.sk) });
}
