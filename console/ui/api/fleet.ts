/**
 * What the fleet looks like (DESIGN §10): the product's statistics (devices per version, and per
 * day and version; hourly series of the product and of each update), an update's failures grouped
 * by reason, and the devices granted an update with their outcomes, a page at a time.
 */
import type { ApiSession, ProductStats, UpdateDevicePage, UpdateFailures } from '../../api-types.ts';
import { cloudPath, request, segment } from './http.ts';
import type { UpdateRef } from './updates.ts';

export const session = () => request<ApiSession>('GET', '/api/session');

export interface StatsRange {
  /** Days of devices seen (in all and per version). */
  readonly days: number;
  /** Hours of the hourly series. */
  readonly hours: number;
}

export const productStats = (cloud: string, product: string, { days, hours }: StatsRange) =>
  request<ProductStats>(
    'GET',
    `${cloudPath(cloud)}/products/${segment(product)}/stats?${new URLSearchParams({
      days: String(days),
      hours: String(hours),
    })}`,
  );

const updatePath = ({ cloud, product, version }: UpdateRef) =>
  `${cloudPath(cloud)}/products/${segment(product)}/updates/${segment(version)}`;

export const updateFailures = (ref: UpdateRef) =>
  request<UpdateFailures>('GET', `${updatePath(ref)}/failures`);

/** One page of the devices granted the update; `next`: the cursor the previous page ended with. */
export const updateDevices = (ref: UpdateRef, limit: number, next?: string) =>
  request<UpdateDevicePage>(
    'GET',
    `${updatePath(ref)}/devices?${new URLSearchParams({ limit: String(limit), ...(next ? { next } : {}) })}`,
  );
