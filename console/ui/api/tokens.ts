/** Device tokens: list, create (the secret comes back once), revoke. */
import type { CreatedToken, TokenInfo } from '../../api-types.ts';
import { cloudPath, request, segment } from './http.ts';

export const listTokens = (cloud: string, product: string) =>
  request<TokenInfo[]>('GET', `${cloudPath(cloud)}/tokens?${new URLSearchParams({ product })}`);

export const createToken = (
  cloud: string,
  scope: { product: string; device?: string; description?: string },
) => request<CreatedToken>('POST', `${cloudPath(cloud)}/tokens`, scope);

export const revokeToken = (cloud: string, id: string) =>
  request<{ revoked: string }>('DELETE', `${cloudPath(cloud)}/tokens/${segment(id)}`);
