/** The devices of a product: a page of the list, one device's history, and a policy's dry run over them. */
import type { DeviceDetail, DevicePage, PolicyCheckResult } from '../../api-types.ts';
import { cloudPath, request, segment } from './http.ts';

/** The list's filters as the page holds them: empty means no filter. */
export interface DeviceFilters {
  /** Devices whose id starts with this. */
  readonly id: string;
  readonly version: string;
  /** A policy expression (newVersion is null). */
  readonly where: string;
}

const base = (cloud: string, product: string) => `${cloudPath(cloud)}/products/${segment(product)}`;

/** One page of devices in id order; `next` is the cursor a previous page ended with. */
export function listDevices(cloud: string, product: string, filters: DeviceFilters, next?: string) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value.trim() !== '') query.set(name, value.trim());
  if (next) query.set('next', next);
  return request<DevicePage>('GET', `${base(cloud, product)}/devices?${query}`);
}

export const showDevice = (cloud: string, product: string, id: string) =>
  request<DeviceDetail>('GET', `${base(cloud, product)}/devices/${segment(id)}`);

/**
 * How many of the product's devices the policy would match: a bounded scan of the registry (the
 * answer's `fleet` says whether it completed; `next` resumes it). A broken policy fails with its column.
 */
export const matchPolicy = (
  cloud: string,
  product: string,
  policy: string,
  newVersion: string | undefined,
  next?: string,
) =>
  request<PolicyCheckResult>('POST', `${base(cloud, product)}/policy/match`, {
    policy,
    ...(newVersion ? { newVersion } : {}),
    ...(next ? { next } : {}),
  });
