/** Published updates of a product: list, show, publish, enable, disable, edit, delete. */
import type { PublishSettings, UpdateChanges, UpdateRecord } from '../../api-types.ts';
import { request, segment, type UploadProgress, upload } from './http.ts';

const base = (product: string) => `/api/products/${segment(product)}/updates`;
const one = (product: string, version: string) => `${base(product)}/${segment(version)}`;

export const listUpdates = (product: string) => request<UpdateRecord[]>('GET', base(product));

export const showUpdate = (product: string, version: string) =>
  request<UpdateRecord>('GET', one(product, version));

export const enableUpdate = (product: string, version: string) =>
  request<UpdateRecord>('POST', `${one(product, version)}/enable`);

export const disableUpdate = (product: string, version: string) =>
  request<UpdateRecord>('POST', `${one(product, version)}/disable`);

/** Changes policy, description or limits; null removes a limit. */
export const editUpdate = (product: string, version: string, changes: UpdateChanges) =>
  request<UpdateRecord>('PATCH', one(product, version), changes);

export const deleteUpdate = (product: string, version: string) =>
  request<UpdateRecord>('DELETE', one(product, version));

export function publishUpdate(
  product: string,
  settings: PublishSettings,
  file: Blob,
  onProgress: (p: UploadProgress) => void,
): Promise<UpdateRecord> {
  const query = new URLSearchParams({ settings: JSON.stringify(settings) });
  return upload<UpdateRecord>(`${base(product)}?${query}`, file, onProgress);
}
