/**
 * Device tokens: created for a product (optionally one device), shown once, stored only as sha256
 * hashes (functions/tokens.ts keeps them), listed by id, revoked by id.
 */
import { isValidId, isValidProduct } from '#core/device.ts';
import {
  revokeToken as removeToken,
  listTokens as storedTokens,
  createToken as storeToken,
  type TokenInfo,
} from '#functions/tokens.ts';
import type { CloudRecords } from './cloud.ts';
import { adminOperation, InvalidInputError, NotFoundError } from './errors.ts';
import { checkProduct } from './settings.ts';

export type { TokenInfo };

export interface TokenScope {
  readonly product: string;
  /** When set, the token is valid for this device only. */
  readonly device?: string;
  readonly description?: string;
}

/** A new token: the secret (not stored anywhere) and what is kept of it. */
export interface CreatedToken {
  readonly token: string;
  readonly info: TokenInfo;
}

/** Checks a token's scope; createToken checks it too, this lets a caller refuse it before opening a cloud. */
export function checkTokenScope({ product, device }: TokenScope): void {
  if (!isValidProduct(product)) {
    throw new InvalidInputError(`Invalid --product "${product}": use 1–64 characters of A-Z a-z 0-9 . _ : -`);
  }
  if (device !== undefined && !isValidId(device)) {
    throw new InvalidInputError(`Invalid --device "${device}": use 1–128 characters of A-Z a-z 0-9 . _ : -`);
  }
}

export function createToken(cloud: CloudRecords, scope: TokenScope): Promise<CreatedToken> {
  return adminOperation(cloud.store, async () => {
    checkTokenScope(scope);
    const { product, device, description } = scope;
    return storeToken(cloud.table, {
      product,
      ...(device !== undefined ? { device } : {}),
      ...(description !== undefined ? { description } : {}),
    });
  });
}

/** Tokens by id, product and device (of one product when given); the secrets are not stored. */
export function listTokens(cloud: CloudRecords, product?: string): Promise<TokenInfo[]> {
  return adminOperation(cloud.store, async () => {
    if (product !== undefined) checkProduct(product);
    const tokens = await storedTokens(cloud.table);
    return tokens.filter((t) => product === undefined || t.product === product);
  });
}

/** Token ids are the first hex digits of the token's hash. */
export function checkTokenId(id: string): void {
  if (!/^[0-9a-f]{4,64}$/.test(id)) {
    throw new InvalidInputError(`Invalid token id "${id}": use the id updraft token list shows (hex digits)`);
  }
}

/** Revokes the token whose id starts with `id` (hex digits, as `listTokens` shows). */
export function revokeToken(cloud: CloudRecords, id: string): Promise<{ revoked: string }> {
  return adminOperation(cloud.store, async () => {
    checkTokenId(id);
    if (!(await removeToken(cloud.table, id))) {
      throw new NotFoundError(
        `No single token with id ${id}: see updraft token list (use a longer id if several match)`,
      );
    }
    return { revoked: id };
  });
}
