/**
 * Verification rules of DESIGN §7. The offer is checked before downloading (signature and version
 * rule, so a refused image costs no bandwidth) and the image after (sha256).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { verifyManifest } from '#core/manifest.ts';
import { compareVersions } from '#core/version.ts';
import { VerificationError } from './errors.ts';
import type { Offer } from './state.ts';

export interface VerifyContext {
  readonly product: string;
  /** The version the device runs now. */
  readonly running: string;
  /** `update.keys`; empty means signatures are not checked. */
  readonly keys: readonly string[];
}

/**
 * Throws VerificationError when the offer must be refused: a missing or bad signature while keys are
 * configured, or a version not greater than the running one without a signed manifest allowing it.
 * The cloud does not send `allowDowngrade`; the signature tells which value was signed.
 */
export function checkOffer(offer: Offer, ctx: VerifyContext): void {
  const downgrade = compareVersions(offer.version, ctx.running) <= 0;
  if (ctx.keys.length > 0) {
    if (!offer.signature) {
      throw new VerificationError(`Update ${offer.update} is not signed; update.keys requires a signature`);
    }
    const manifest = {
      product: ctx.product,
      version: offer.version,
      sha256: offer.checksum,
      size: offer.size,
    };
    const signedPlain = verifyManifest({ ...manifest, allowDowngrade: false }, offer.signature, ctx.keys);
    const signedDowngrade =
      !signedPlain && verifyManifest({ ...manifest, allowDowngrade: true }, offer.signature, ctx.keys);
    if (!signedPlain && !signedDowngrade) {
      throw new VerificationError(
        `Signature of update ${offer.update} does not verify with any key of update.keys`,
      );
    }
    if (downgrade && !signedDowngrade) {
      throw new VerificationError(
        `Version ${offer.version} is not greater than the running ${ctx.running} and the signed manifest does not allow a downgrade`,
      );
    }
    return;
  }
  if (downgrade) {
    throw new VerificationError(
      `Version ${offer.version} is not greater than the running ${ctx.running}; a downgrade needs a signed manifest (set update.keys)`,
    );
  }
}

export function checkDigest(actual: string, offer: Offer): void {
  if (actual !== offer.checksum) {
    throw new VerificationError(`Image sha256 ${actual} does not match the checksum ${offer.checksum}`);
  }
}

/** sha256 (hex) of a file: an image that waited on disk for its apply window is hashed again. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
