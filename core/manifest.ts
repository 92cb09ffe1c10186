/**
 * The signed update manifest (DESIGN §6, §7): what `updraft publish --sign-key` signs and what the agent
 * verifies with the keys of `update.keys` before applying an image.
 *
 * Canonical form (the exact bytes signed; changing it breaks every deployed agent):
 *   compact JSON (no whitespace) of exactly these five keys, in this order,
 *     {"product":<string>,"version":<string>,"sha256":<string>,"size":<integer>,"allowDowngrade":<boolean>}
 *   with strings escaped as JSON.stringify escapes them, encoded as UTF-8. For example
 *     {"product":"router","version":"1.2.3","sha256":"9f86…0f00a08","size":1048576,"allowDowngrade":false}
 *   `product` is a product name (1–64 of A-Za-z0-9._:-), `version` strict SemVer 2.0 (build metadata
 *   included as published), `sha256` 64 lowercase hex digits, `size` a non-negative safe integer.
 *
 * Signature: Ed25519 (RFC 8032, pure, no prehash) over those bytes, transported as base64 (88 chars).
 * Public keys travel as base64 of the raw 32-byte key (the `update.keys` form) or as PEM SPKI.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { isValidProduct } from './device.ts';
import { ValidationError } from './errors.ts';
import { isSemver } from './version.ts';

export interface Manifest {
  readonly product: string;
  readonly version: string;
  /** sha256 of the image, lowercase hex. */
  readonly sha256: string;
  /** Image size in bytes. */
  readonly size: number;
  readonly allowDowngrade: boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNATURE_BYTES = 64;
const RAW_KEY_BYTES = 32;

/** The bytes that are signed. Throws ValidationError when a field breaks the rules above. */
export function canonicalManifest(m: Manifest): Buffer {
  if (typeof m.product !== 'string' || !isValidProduct(m.product)) {
    throw new ValidationError('Invalid manifest "product": use 1–64 characters of A-Z a-z 0-9 . _ : -');
  }
  if (typeof m.version !== 'string' || !isSemver(m.version)) {
    throw new ValidationError('Invalid manifest "version": not SemVer 2.0');
  }
  if (typeof m.sha256 !== 'string' || !SHA256_HEX.test(m.sha256)) {
    throw new ValidationError('Invalid manifest "sha256": use 64 lowercase hex digits');
  }
  if (!Number.isSafeInteger(m.size) || m.size < 0) {
    throw new ValidationError('Invalid manifest "size": use a non-negative integer number of bytes');
  }
  if (typeof m.allowDowngrade !== 'boolean') {
    throw new ValidationError('Invalid manifest "allowDowngrade": use true or false');
  }
  // A fresh literal fixes the key order and drops any extra properties of `m`.
  const canonical = {
    product: m.product,
    version: m.version,
    sha256: m.sha256,
    size: m.size,
    allowDowngrade: m.allowDowngrade,
  };
  return Buffer.from(JSON.stringify(canonical), 'utf8');
}

/** Base64 Ed25519 signature of the canonical manifest. Throws ValidationError for a key that is not an Ed25519 private key. */
export function signManifest(m: Manifest, privateKeyPem: string): string {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (cause) {
    throw new ValidationError(
      'Invalid signing key: not a PEM private key (create one with "updraft keys generate")',
      {
        cause,
      },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ValidationError(
      `Invalid signing key: ${key.asymmetricKeyType ?? 'unknown'} key, need Ed25519 (create one with "updraft keys generate")`,
    );
  }
  return sign(null, canonicalManifest(m), key).toString('base64');
}

function decodeBase64(text: string, bytes: number): Buffer | undefined {
  // Buffer.from(…, 'base64') skips invalid characters silently; check the alphabet and length first.
  if (text.length !== Math.ceil(bytes / 3) * 4 || !BASE64.test(text)) return undefined;
  const buf = Buffer.from(text, 'base64');
  return buf.length === bytes ? buf : undefined;
}

function toPublicKey(text: string): KeyObject | undefined {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    if (trimmed.startsWith('-----BEGIN')) {
      key = createPublicKey(trimmed);
    } else {
      const raw = decodeBase64(trimmed, RAW_KEY_BYTES);
      if (!raw) return undefined;
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch {
    return undefined;
  }
  return key.asymmetricKeyType === 'ed25519' ? key : undefined;
}

/**
 * True when `signature` over the canonical form of `m` verifies with any of `keys` (several keys allow
 * rotation). Malformed manifests, signatures or keys make it false, never an exception: a device must
 * refuse the update, not crash.
 */
export function verifyManifest(m: Manifest, signature: string, keys: readonly string[]): boolean {
  if (typeof signature !== 'string' || !Array.isArray(keys)) return false;
  const sig = decodeBase64(signature.trim(), SIGNATURE_BYTES);
  if (!sig) return false;
  let data: Buffer;
  try {
    data = canonicalManifest(m);
  } catch {
    return false;
  }
  for (const text of keys) {
    if (typeof text !== 'string') continue;
    const key = toPublicKey(text);
    if (!key) continue;
    try {
      if (verify(null, data, key, sig)) return true;
    } catch {
      // A key node rejects at verify time is just a key that does not verify.
    }
  }
  return false;
}

export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKey: rawOf(publicKey),
  };
}

function rawOf(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length).toString('base64');
}

/** PEM (SPKI public key, or a private key whose public half is wanted) → base64 raw 32-byte key for `update.keys`. */
export function publicKeyToRaw(pem: string): string {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new ValidationError('Invalid public key: not a PEM key', { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ValidationError(`Invalid public key: ${key.asymmetricKeyType ?? 'unknown'} key, need Ed25519`);
  }
  return rawOf(key);
}
