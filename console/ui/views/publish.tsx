/**
 * Publishing: the image is streamed to the server as the request body (progress in bytes and
 * rate), the policy is compiled as it is typed and an error points at its column, and the devices
 * it would match are counted; limits and phases are optional.
 */
import { useEffect, useState } from 'preact/hooks';
import type { PublishSettings, UpdateRecord } from '../../api-types.ts';
import type { UploadProgress } from '../api/http.ts';
import { publishUpdate } from '../api/updates.ts';
import { ErrorLine } from '../components.tsx';
import { bytes } from '../format.ts';
import { LIMITS, LimitFields, PHASE_FIELDS, PhaseFields, PolicyField } from '../policy-field.tsx';
import { WouldMatch } from '../would-match.tsx';

function settingsFrom(form: HTMLFormElement, file: File): PublishSettings {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? '').trim();
  const settings: Record<string, unknown> = {
    version: text('version'),
    name: file.name,
    policy: text('policy'),
    description: text('description'),
  };
  if (text('signKey') !== '') settings.signKey = text('signKey');
  for (const { name } of LIMITS) if (text(name) !== '') settings[name] = Number(text(name));
  for (const { name } of PHASE_FIELDS) if (text(name) !== '') settings[name] = text(name);
  if (data.get('disabled') === 'on') settings.disabled = true;
  return settings as unknown as PublishSettings;
}

function ProgressLine({ progress }: { progress: UploadProgress }) {
  return (
    <div class="upload">
      <progress aria-label="Upload progress" max={progress.total} value={progress.sent} />
      <span>
        {bytes(progress.sent)} of {bytes(progress.total)} at {bytes(progress.rate)}/s
      </span>
    </div>
  );
}

export function Publish({ cloud, product }: { cloud: string; product: string }) {
  const [target, setTarget] = useState(product);
  // The header's product switched: publish there (the form stays mounted and kept the old one).
  useEffect(() => setTarget(product), [product]);
  const [version, setVersion] = useState('');
  const [policy, setPolicy] = useState('');
  const [progress, setProgress] = useState<UploadProgress | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [published, setPublished] = useState<UpdateRecord | undefined>(undefined);

  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const file = (form.elements.namedItem('image') as HTMLInputElement).files?.[0];
    if (!file) return setError('Choose the image file to publish');
    setBusy(true);
    setError(undefined);
    setPublished(undefined);
    publishUpdate(cloud, target, settingsFrom(form, file), file, setProgress).then(
      (update) => {
        setBusy(false);
        setPublished(update);
      },
      (err: Error) => {
        setBusy(false);
        setError(err.message);
      },
    );
  };

  return (
    <section aria-labelledby="publish-title">
      <h2 id="publish-title">Publish an update</h2>
      <p>
        To cloud <strong>{cloud}</strong>
      </p>
      <form aria-labelledby="publish-title" onSubmit={submit}>
        <label>
          Product
          <input name="product" required value={target} onInput={(e) => setTarget(e.currentTarget.value)} />
        </label>
        <label>
          Version
          <input
            name="version"
            required
            placeholder="1.2.0"
            value={version}
            onInput={(e) => setVersion(e.currentTarget.value)}
          />
        </label>
        <label>
          Image file
          <input name="image" type="file" required />
        </label>
        <PolicyField policy={policy} onInput={setPolicy} version={version} describedBy="would-match" />
        <WouldMatch id="would-match" cloud={cloud} product={target} policy={policy} version={version} />
        <label>
          Description
          <input name="description" />
        </label>
        <label>
          Signing key path (optional: a PEM file on the console's machine)
          <input name="signKey" placeholder="keys/updraft-signing.pem" spellcheck={false} />
        </label>
        <LimitFields legend="Limits (optional)" />
        <PhaseFields legend="Phases (optional)" />
        <label class="inline">
          <input name="disabled" type="checkbox" /> Publish disabled (enable it later)
        </label>
        <button type="submit" disabled={busy}>
          Publish
        </button>
      </form>
      {progress && <ProgressLine progress={progress} />}
      {published && (
        <p role="status" class="ok">
          Published {published.version} of {published.product}:{' '}
          <a href={`#/updates/${encodeURIComponent(published.version)}`}>open update {published.version}</a>
        </p>
      )}
      <ErrorLine message={error} />
    </section>
  );
}
