/**
 * Publishing one update to several clouds (`--cloud all`): validated against every cloud before
 * anything is uploaded to any, then published cloud by cloud. A failure after the first cloud says
 * which clouds already have the update.
 */
import type { UpdateRecord } from '#core/types.ts';
import type { NamedCloud } from './cloud.ts';
import { InvalidInputError, PublishError, toAdminError } from './errors.ts';
import { type PublishHooks, type PublishInput, preparePublish, publish } from './publish.ts';

export interface CloudPublishEvents {
  /** Called once the publish is valid for every cloud, before any upload. */
  readonly onValidated?: () => void;
  /** Called before a cloud's upload; what it returns is told the progress of that upload. */
  readonly onUploadStart?: (cloud: string) => PublishHooks['onProgress'];
  /** Called when a cloud's upload ended, whether it succeeded or not. */
  readonly onUploadEnd?: (cloud: string) => void;
  readonly onPublished?: (cloud: string, record: UpdateRecord) => void;
}

export type CloudRecord = UpdateRecord & { readonly cloud: string };

export async function publishToClouds(
  clouds: readonly NamedCloud[],
  input: PublishInput,
  events: CloudPublishEvents = {},
): Promise<CloudRecord[]> {
  if (clouds.length > 1 && 'stream' in input) {
    throw new InvalidInputError('An uploaded image can be published to one cloud at a time: name one cloud');
  }
  for (const cloud of clouds) await preparePublish(cloud, input);
  events.onValidated?.();
  const published: CloudRecord[] = [];
  for (const cloud of clouds) {
    const onProgress = events.onUploadStart?.(cloud.name);
    let record: UpdateRecord;
    try {
      record = await publish(cloud, input, onProgress ? { onProgress } : {});
    } catch (err) {
      if (published.length === 0) throw err;
      const cause = toAdminError(err, cloud.store);
      const done = published.map((p) => p.cloud).join(', ');
      throw new PublishError(`${cause.message} (already published to ${done})`, cause);
    } finally {
      events.onUploadEnd?.(cloud.name);
    }
    published.push({ cloud: cloud.name, ...record });
    events.onPublished?.(cloud.name, record);
  }
  return published;
}
