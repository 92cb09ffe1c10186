/**
 * What the fleet looks like: today the product's statistics (devices per version, per-update
 * counters, daily metrics). The fleet-data operations (hourly series, devices per version over
 * time, device queries; DESIGN §10) get their client functions here when admin/ offers them.
 */
import type { ApiSession, ProductStats } from '../../api-types.ts';
import { cloudPath, request, segment } from './http.ts';

export const session = () => request<ApiSession>('GET', '/api/session');

export const productStats = (cloud: string, product: string, days = 14) =>
  request<ProductStats>('GET', `${cloudPath(cloud)}/products/${segment(product)}/stats?days=${days}`);
