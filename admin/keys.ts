/** Ed25519 key pairs for signing manifests (publish with a signing key; the agent's update.keys). */
import { existsSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '#core/manifest.ts';
import { ConflictError, InvalidInputError, toAdminError } from './errors.ts';
import { readLocalFile } from './files.ts';

export interface GeneratedKeys {
  /** Raw public key in base64, as the agent's update.keys takes it. */
  readonly publicKey: string;
  readonly publicKeyPem: string;
  /** Returned when the key pair was not written to files. */
  readonly privateKeyPem?: string;
  readonly privateKeyFile?: string;
  readonly publicKeyFile?: string;
}

/**
 * Creates a key pair. With `out`, writes the private key to `out` (mode 0600) and the public key to
 * `out.pub`, refusing to overwrite either; without, returns the private key in PEM.
 */
export function generateKeys(out?: string): GeneratedKeys {
  const pair = generateKeyPair();
  const publicKeys = { publicKey: pair.publicKey, publicKeyPem: pair.publicKeyPem };
  if (out === undefined) return { ...publicKeys, privateKeyPem: pair.privateKeyPem };
  for (const file of [out, `${out}.pub`]) {
    if (existsSync(file)) throw new ConflictError(`${file} exists: remove it or choose another --out`);
  }
  try {
    writeFileSync(out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    writeFileSync(`${out}.pub`, pair.publicKeyPem, { flag: 'wx' });
  } catch (err) {
    throw new InvalidInputError(`Cannot write ${out}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { ...publicKeys, privateKeyFile: out, publicKeyFile: `${out}.pub` };
}

/** The PEM private key in `file`, to sign a publish with. */
export function readSigningKey(file: string): string {
  try {
    return readLocalFile(file, {
      missing: `Signing key not found: ${file}`,
      unreadable: `Cannot read --sign-key ${file}`,
    });
  } catch (err) {
    throw toAdminError(err);
  }
}
