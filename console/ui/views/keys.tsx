/**
 * Signing keys: generates an Ed25519 pair. The private key is shown once, with copy and download,
 * and lives only in this view's state: leaving the view forgets it, and the server keeps no copy.
 */
import { useEffect, useState } from 'preact/hooks';
import type { GeneratedKeys } from '../../api-types.ts';
import { generateKeys } from '../api/keys.ts';
import { ErrorLine } from '../components.tsx';

function CopyButton({ text, name }: { text: string; name: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () => navigator.clipboard.writeText(text).then(() => setCopied(true));
  return (
    <>
      <button type="button" onClick={copy}>
        {name}
      </button>
      {copied && <span role="status">Copied</span>}
    </>
  );
}

/** A link that saves the private key as a file; its object URL is freed with the view. */
function DownloadLink({ pem }: { pem: string }) {
  const [href, setHref] = useState<string | undefined>(undefined);
  useEffect(() => {
    const url = URL.createObjectURL(new Blob([pem], { type: 'application/x-pem-file' }));
    setHref(url);
    return () => URL.revokeObjectURL(url);
  }, [pem]);
  return href ? (
    <a class="button" href={href} download="updraft-signing.pem">
      Download private key
    </a>
  ) : null;
}

function NewKeys({ keys }: { keys: GeneratedKeys }) {
  const pem = keys.privateKeyPem ?? '';
  return (
    <section class="new-keys" aria-label="New key pair">
      <p class="warning">
        Save the private key now: it is shown only once and the console keeps no copy. Anyone holding it can
        sign updates your devices will install.
      </p>
      <label>
        Private key (shown only now)
        <textarea readOnly rows={4} value={pem} spellcheck={false} />
      </label>
      <div class="row">
        <CopyButton text={pem} name="Copy private key" />
        <DownloadLink pem={pem} />
      </div>
      <label>
        Public key for the agent's update.keys
        <input readOnly value={keys.publicKey} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div class="row">
        <CopyButton text={keys.publicKey} name="Copy public key" />
      </div>
      <p>
        Publish with the private key's path as the signing key; devices whose <code>update.keys</code> list
        the public key then install only what it signed.
      </p>
    </section>
  );
}

export function Keys() {
  const [keys, setKeys] = useState<GeneratedKeys | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const generate = () => {
    setError(undefined);
    generateKeys().then(setKeys, (err: Error) => setError(err.message));
  };
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">Signing keys</h2>
      <p>An Ed25519 key pair signs update manifests; the agent checks them against its update.keys.</p>
      <button type="button" onClick={generate}>
        Generate key pair
      </button>
      <ErrorLine message={error} />
      {keys && <NewKeys keys={keys} />}
    </section>
  );
}
