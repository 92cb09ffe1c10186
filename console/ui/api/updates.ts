/** Published updates of a product: list, show, publish, enable, disable, edit, delete, rollout control. */
import type {
  PublishSettings,
  RetryResult,
  RolloutResult,
  UpdateChanges,
  UpdateRecord,
  UpdateView,
} from '../../api-types.ts';
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
  request<UpdateView[]>('GET', base(cloud, product));

export const showUpdate = (ref: UpdateRef) => request<UpdateView>('GET', one(ref));

export const enableUpdate = (ref: UpdateRef) => request<UpdateView>('POST', `${one(ref)}/enable`);

export const disableUpdate = (ref: UpdateRef) => request<UpdateView>('POST', `${one(ref)}/disable`);

/** Changes policy, description or limits; null removes a limit. */
export const editUpdate = (ref: UpdateRef, changes: UpdateChanges) =>
  request<UpdateView>('PATCH', one(ref), changes);

export const deleteUpdate = (ref: UpdateRef) => request<UpdateRecord>('DELETE', one(ref));

/** Rollout control (DESIGN §12), the same operations as `updraft rollout`. */
export const pauseRollout = (ref: UpdateRef, reason?: string) =>
  request<RolloutResult>('POST', `${one(ref)}/pause`, reason ? { reason } : {});

export const resumeRollout = (ref: UpdateRef) => request<RolloutResult>('POST', `${one(ref)}/resume`);

export const advanceRollout = (ref: UpdateRef, force: boolean) =>
  request<RolloutResult>('POST', `${one(ref)}/advance`, { force });

export const retryFailed = (ref: UpdateRef) => request<RetryResult>('POST', `${one(ref)}/retry-failed`);

/** The update a rollout operation answered, as list and show would show it. */
export const viewOf = ({ update, phase }: RolloutResult): UpdateView =>
  phase ? { ...update, phaseStatus: phase } : update;

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
