/** Device tokens: list, create (the secret comes back once), revoke. */
import type { CreatedToken, TokenInfo } from '../../api-types.ts';
import { request, segment } from './http.ts';

export const listTokens = (product: string) =>
  request<TokenInfo[]>('GET', `/api/tokens?${new URLSearchParams({ product })}`);

export const createToken = (scope: { product: string; device?: string; description?: string }) =>
  request<CreatedToken>('POST', '/api/tokens', scope);

export const revokeToken = (id: string) =>
  request<{ revoked: string }>('DELETE', `/api/tokens/${segment(id)}`);
