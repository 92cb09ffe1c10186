import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import {
  canonicalManifest,
  generateKeyPair,
  type Manifest,
  publicKeyToRaw,
  signManifest,
  verifyManifest,
} from '#core/manifest.ts';

const manifest: Manifest = {
  product: 'router',
  version: '1.2.3-rc.1+b7',
  sha256: 'a'.repeat(64),
  size: 1048576,
  allowDowngrade: false,
};
const pair = generateKeyPair();
const other = generateKeyPair();
const signature = signManifest(manifest, pair.privateKeyPem);

describe('canonicalManifest', () => {
  it('is compact JSON with keys in the fixed order, whatever the input order', () => {
    const shuffled = {
      allowDowngrade: true,
      size: 5,
      sha256: manifest.sha256,
      version: '2.0.0',
      product: 'p',
      extra: 'dropped',
    } as Manifest;
    expect(canonicalManifest(shuffled).toString('utf8')).toBe(
      `{"product":"p","version":"2.0.0","sha256":"${'a'.repeat(64)}","size":5,"allowDowngrade":true}`,
    );
  });

  it.each([
    [{ ...manifest, product: 'a b' }, 'Invalid manifest "product"'],
    [{ ...manifest, version: '1.2' }, 'Invalid manifest "version"'],
    [{ ...manifest, sha256: 'A'.repeat(64) }, 'Invalid manifest "sha256"'],
    [{ ...manifest, size: 1.5 }, 'Invalid manifest "size"'],
    [{ ...manifest, size: -1 }, 'Invalid manifest "size"'],
    [{ ...manifest, allowDowngrade: 'false' as unknown as boolean }, 'Invalid manifest "allowDowngrade"'],
  ])('refuses %j', (m, message) => {
    expect(() => canonicalManifest(m)).toThrow(ValidationError);
    expect(() => canonicalManifest(m)).toThrow(message);
  });
});

describe('sign and verify', () => {
  it('round-trips with the raw base64 key and with the PEM key', () => {
    expect(Buffer.from(signature, 'base64')).toHaveLength(64);
    expect(verifyManifest(manifest, signature, [pair.publicKey])).toBe(true);
    expect(verifyManifest(manifest, signature, [pair.publicKeyPem])).toBe(true);
  });

  it('fails when any field changes', () => {
    const changed: Manifest[] = [
      { ...manifest, product: 'router2' },
      { ...manifest, version: '1.2.3-rc.1+b8' },
      { ...manifest, sha256: `b${'a'.repeat(63)}` },
      { ...manifest, size: 1048577 },
      { ...manifest, allowDowngrade: true },
    ];
    for (const m of changed) expect(verifyManifest(m, signature, [pair.publicKey])).toBe(false);
  });

  it('supports key rotation: any listed key may verify', () => {
    expect(verifyManifest(manifest, signature, [other.publicKey])).toBe(false);
    expect(verifyManifest(manifest, signature, [other.publicKey, pair.publicKey])).toBe(true);
    expect(verifyManifest(manifest, signature, ['garbage', pair.publicKeyPem])).toBe(true);
  });

  it('returns false, never throws, on malformed input', () => {
    const tampered = Buffer.from(signature, 'base64');
    tampered[0]! ^= 1;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'pem',
      type: 'spki',
    });
    const cases: [Manifest, string, string[]][] = [
      [manifest, tampered.toString('base64'), [pair.publicKey]],
      [manifest, '', [pair.publicKey]],
      [manifest, 'not base64!', [pair.publicKey]],
      [manifest, `${signature.slice(0, -4)}!!!!`, [pair.publicKey]],
      [manifest, signature.slice(4), [pair.publicKey]],
      [manifest, signature, []],
      [manifest, signature, ['']],
      [manifest, signature, ['AAAA']],
      [manifest, signature, [Buffer.alloc(32).toString('base64')]],
      [manifest, signature, ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----']],
      [manifest, signature, [rsa.toString()]],
      [{ ...manifest, size: Number.NaN }, signature, [pair.publicKey]],
      [null as unknown as Manifest, signature, [pair.publicKey]],
      [manifest, 42 as unknown as string, [pair.publicKey]],
      [manifest, signature, [7 as unknown as string]],
      [manifest, signature, 'x' as unknown as string[]],
    ];
    for (const [m, sig, keys] of cases) expect(verifyManifest(m, sig, keys)).toBe(false);
  });
});

describe('signManifest', () => {
  it('refuses keys that are not Ed25519 private keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    expect(() => signManifest(manifest, rsa.toString())).toThrow(
      'Invalid signing key: rsa key, need Ed25519',
    );
    expect(() => signManifest(manifest, 'nope')).toThrow(ValidationError);
  });

  it('is deterministic (Ed25519)', () => {
    expect(signManifest(manifest, pair.privateKeyPem)).toBe(signature);
  });
});

describe('keys', () => {
  it('generateKeyPair gives a 32-byte raw key matching the PEM', () => {
    expect(Buffer.from(pair.publicKey, 'base64')).toHaveLength(32);
    expect(pair.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    expect(pair.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(publicKeyToRaw(pair.publicKeyPem)).toBe(pair.publicKey);
    expect(publicKeyToRaw(pair.privateKeyPem)).toBe(pair.publicKey);
    expect(other.publicKey).not.toBe(pair.publicKey);
  });

  it('publicKeyToRaw refuses non-PEM and non-Ed25519 input', () => {
    expect(() => publicKeyToRaw('nope')).toThrow('Invalid public key: not a PEM key');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'pem',
      type: 'spki',
    });
    expect(() => publicKeyToRaw(ec.toString())).toThrow('Invalid public key: ec key, need Ed25519');
  });
});
