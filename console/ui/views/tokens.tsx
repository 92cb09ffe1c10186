/** Device tokens of a product: create (the secret is shown once, with a copy button) and revoke. */
import { useState } from 'preact/hooks';
import type { CreatedToken } from '../../api-types.ts';
import { createToken, listTokens, revokeToken } from '../api/tokens.ts';
import { ErrorLine, Time } from '../components.tsx';
import { useLoad } from '../hooks.ts';

function NewSecret({ created }: { created: CreatedToken }) {
  const [copied, setCopied] = useState(false);
  const copy = () => navigator.clipboard.writeText(created.token).then(() => setCopied(true));
  return (
    <section class="secret" aria-label="New token">
      <label>
        New token secret (shown only now)
        <input readOnly value={created.token} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <button type="button" onClick={copy}>
        Copy
      </button>
      {copied && <span role="status">Copied</span>}
    </section>
  );
}

export function Tokens({ cloud, product }: { cloud: string; product: string }) {
  const { data: tokens, error, reload } = useLoad(() => listTokens(cloud, product), `${cloud}/${product}`);
  const [created, setCreated] = useState<CreatedToken | undefined>(undefined);
  const [actionError, setActionError] = useState<string | undefined>(undefined);

  const create = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const device = String(data.get('device') ?? '').trim();
    const description = String(data.get('description') ?? '').trim();
    setActionError(undefined);
    createToken(cloud, {
      product,
      ...(device ? { device } : {}),
      ...(description ? { description } : {}),
    }).then(
      (token) => {
        setCreated(token);
        form.reset();
        reload();
      },
      (err: Error) => setActionError(err.message),
    );
  };
  const revoke = (id: string) => {
    setActionError(undefined);
    revokeToken(cloud, id).then(reload, (err: Error) => setActionError(err.message));
  };

  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">Device tokens of {product}</h2>
      <form aria-label="Create a token" onSubmit={create}>
        <label>
          Device (optional: this device only)
          <input name="device" />
        </label>
        <label>
          Description
          <input name="description" />
        </label>
        <button type="submit">Create token</button>
      </form>
      {created && <NewSecret created={created} />}
      <ErrorLine message={error ?? actionError} />
      {tokens && (
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Device</th>
              <th scope="col">Description</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id}>
                <th scope="row">
                  <code>{t.id}</code>
                </th>
                <td>{t.device ?? 'any'}</td>
                <td>{t.description ?? ''}</td>
                <td>{t.created ? <Time iso={t.created} /> : '—'}</td>
                <td>
                  <button type="button" aria-label={`Revoke token ${t.id}`} onClick={() => revoke(t.id)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
