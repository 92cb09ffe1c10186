/** Device tokens as the device API sees them: a token's scope, looked up by its sha256 hash and cached. */
import { createHash } from 'node:crypto';
import { BoundedMap } from './bounded-map.ts';
import type { Table } from './dynamo.ts';
import { keys } from './keys.ts';

export interface TokenScope {
  readonly product: string;
  /** When set, the token is valid for this device only. */
  readonly device?: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class TokenScopes {
  private readonly cache = new BoundedMap<string, { scope: TokenScope | undefined; at: number }>(10_000);

  constructor(
    private readonly table: Table,
    /** How long a lookup (found or not) is served from memory. */
    private readonly cacheMs: number,
    private readonly now: () => number,
  ) {}

  /** The scope of a valid token; undefined for an unknown or revoked one. */
  async scopeOf(token: string): Promise<TokenScope | undefined> {
    const hash = hashToken(token);
    const now = this.now();
    const hit = this.cache.get(hash);
    if (hit && now - hit.at < this.cacheMs) return hit.scope;
    const item = await this.table.get(keys.token(hash));
    const scope =
      item && item.revoked !== true
        ? {
            product: String(item.product),
            ...(typeof item.device === 'string' ? { device: item.device } : {}),
          }
        : undefined;
    this.cache.set(hash, { scope, at: now });
    return scope;
  }
}
