/** Published updates of a product: list, show, publish, enable, disable, edit, delete. */
import type { PublishSettings, UpdateChanges, UpdateRecord } from '../../api-types.ts';
import { cloudPath, request, segment, type UploadProgress, upload } from './http.ts';

/** One update of a product in one cloud. */
export interface UpdateRef {
  readonly cloud: string;
  readonly product: string;
  readonly version: string;
}

const base = (cloud: string, product: string) => `${cloudPath(cloud)}/products/${segment(product)}/updates`;
const one = ({ cloud, product, version }: UpdateRef) => `${base(cloud, product)}/${segment(version)}`;

export const listUpdates = (cloud: string, product: string) =>
  request<UpdateRecord[]>('GET', base(cloud, product));

export const showUpdate = (ref: UpdateRef) => request<UpdateRecord>('GET', one(ref));

export const enableUpdate = (ref: UpdateRef) => request<UpdateRecord>('POST', `${one(ref)}/enable`);

export const disableUpdate = (ref: UpdateRef) => request<UpdateRecord>('POST', `${one(ref)}/disable`);

/** Changes policy, description or limits; null removes a limit. */
export const editUpdate = (ref: UpdateRef, changes: UpdateChanges) =>
  request<UpdateRecord>('PATCH', one(ref), changes);

export const deleteUpdate = (ref: UpdateRef) => request<UpdateRecord>('DELETE', one(ref));

export function publishUpdate(
  cloud: string,
  product: string,
  settings: PublishSettings,
  file: Blob,
  onProgress: (p: UploadProgress) => void,
): Promise<UpdateRecord> {
  const query = new URLSearchParams({ settings: JSON.stringify(settings) });
  return upload<UpdateRecord>(`${base(cloud, product)}?${query}`, file, onProgress);
}
