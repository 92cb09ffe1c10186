import { describe, expect, it } from 'vitest';
import type { CycleResult } from '#agent/agent.ts';
import { exitCodeOf } from '#agent/cli.ts';
import { parseCheckinAnswer } from '#agent/cloud.ts';
import { TransientError, VerificationError } from '#agent/errors.ts';
import { parseRetryAfter } from '#agent/http.ts';
import { StreamLogger } from '#agent/log.ts';
import type { Offer } from '#agent/state.ts';
import { checkDigest, checkOffer } from '#agent/verify.ts';
import { generateKeyPair, signManifest } from '#core/manifest.ts';

const SHA = 'ab'.repeat(32);
const ANSWER = {
  url: 'https://bucket.s3.amazonaws.com/i?X-Amz-Signature=1',
  checksum: SHA,
  update: 'u-1',
  version: '1.2.0',
  size: 1000,
};

describe('parseCheckinAnswer (DESIGN §2)', () => {
  it('reads "no update", with or without nextCheckin', () => {
    expect(parseCheckinAnswer({})).toEqual({});
    expect(parseCheckinAnswer({ nextCheckin: 3600 })).toEqual({ nextCheckin: 3600 });
  });

  it('reads an offer, lower-casing the checksum and accepting numbers sent as strings', () => {
    expect(
      parseCheckinAnswer({
        ...ANSWER,
        checksum: SHA.toUpperCase(),
        size: '1000',
        nextCheckin: '60',
        signature: 'c2ln',
      }),
    ).toEqual({
      nextCheckin: 60,
      offer: {
        update: 'u-1',
        version: '1.2.0',
        url: ANSWER.url,
        checksum: SHA,
        size: 1000,
        signature: 'c2ln',
      },
    });
  });

  it.each([
    ['an array', [], 'Invalid checkin answer: not a JSON object'],
    [
      'a non-http url',
      { ...ANSWER, url: 'file:///etc/passwd' },
      'Invalid checkin answer: "url" must be an http(s) URL',
    ],
    [
      'a short checksum',
      { ...ANSWER, checksum: 'abc' },
      'Invalid checkin answer: "checksum" must be a sha256 in hex',
    ],
    [
      'no update id',
      { ...ANSWER, update: undefined },
      'Invalid checkin answer: "update" must be an update id',
    ],
    [
      'a loose version',
      { ...ANSWER, version: '1.2' },
      'Invalid checkin answer: "version" must be SemVer 2.0',
    ],
    ['a negative size', { ...ANSWER, size: -1 }, 'Invalid checkin answer: "size" must be a number of bytes'],
    [
      'a fractional size',
      { ...ANSWER, size: 1.5 },
      'Invalid checkin answer: "size" must be a number of bytes',
    ],
    [
      'a bad nextCheckin',
      { nextCheckin: 'soon' },
      'Invalid checkin answer: "nextCheckin" must be a number of seconds',
    ],
  ])('refuses %s', (_name, answer, message) => {
    expect(() => parseCheckinAnswer(answer)).toThrow(TransientError);
    expect(() => parseCheckinAnswer(answer)).toThrow(message);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);
  it.each([
    ['120', 120],
    [' 5 ', 5],
    ['Wed, 01 Jan 2025 12:01:30 GMT', 90],
    ['Wed, 01 Jan 2025 11:00:00 GMT', 0],
    ['soon', undefined],
    [undefined, undefined],
  ])('%s → %s', (value, seconds) => {
    expect(parseRetryAfter(value, now)).toBe(seconds);
  });
});

describe('checkOffer and checkDigest', () => {
  const key = generateKeyPair();
  const offer = (o: Partial<Offer> = {}): Offer => ({
    update: 'u',
    version: '1.1.0',
    url: 'http://x',
    checksum: SHA,
    size: 1000,
    ...o,
  });
  const sign = (version: string, allowDowngrade: boolean, product = 'demo') =>
    signManifest({ product, version, sha256: SHA, size: 1000, allowDowngrade }, key.privateKeyPem);
  const ctx = (running: string, keys: string[] = []) => ({ product: 'demo', running, keys });

  it('accepts an upgrade without keys and a signed upgrade with keys', () => {
    expect(() => checkOffer(offer(), ctx('1.0.0'))).not.toThrow();
    expect(() =>
      checkOffer(offer({ signature: sign('1.1.0', false) }), ctx('1.0.0', [key.publicKey])),
    ).not.toThrow();
  });

  it.each([
    [
      'the same version without keys',
      offer({ version: '1.0.0' }),
      ctx('1.0.0'),
      /not greater than the running 1.0.0; a downgrade needs a signed manifest/,
    ],
    ['a downgrade without keys', offer({ version: '0.9.0' }), ctx('1.0.0'), /not greater than the running/],
    ['an unsigned offer with keys', offer(), ctx('1.0.0', [key.publicKey]), /is not signed/],
    [
      'a signature over another product',
      offer({ signature: sign('1.1.0', false, 'other') }),
      ctx('1.0.0', [key.publicKey]),
      /does not verify/,
    ],
    [
      'a signature over another size',
      offer({ size: 999, signature: sign('1.1.0', false) }),
      ctx('1.0.0', [key.publicKey]),
      /does not verify/,
    ],
    [
      'a signed downgrade not allowing it',
      offer({ version: '0.9.0', signature: sign('0.9.0', false) }),
      ctx('1.0.0', [key.publicKey]),
      /does not allow a downgrade/,
    ],
  ])('refuses %s', (_name, o, c, message) => {
    expect(() => checkOffer(o, c)).toThrow(VerificationError);
    expect(() => checkOffer(o, c)).toThrow(message);
  });

  it('accepts a downgrade whose signed manifest allows it', () => {
    expect(() =>
      checkOffer(offer({ version: '0.9.0', signature: sign('0.9.0', true) }), ctx('1.0.0', [key.publicKey])),
    ).not.toThrow();
  });

  it('compares the image digest with the offered checksum', () => {
    expect(() => checkDigest(SHA, offer())).not.toThrow();
    expect(() => checkDigest('cd'.repeat(32), offer())).toThrow(/does not match the checksum/);
  });
});

describe('exitCodeOf (--once)', () => {
  const ok = { update: 'u', success: true, status: 'applied', version: '1.1.0' } as const;
  const bad = { update: 'u', success: false, status: 'failed', version: '1.0.0' } as const;
  it.each<[string, CycleResult, number]>([
    ['nothing to do', { outcome: 'no-update', reports: [] }, 0],
    ['applied', { outcome: 'applied', reports: [ok] }, 0],
    ['held back', { outcome: 'skipped', reports: [] }, 0],
    ['disabled', { outcome: 'disabled', reports: [] }, 0],
    ['earlier update confirmed failed, then nothing to do', { outcome: 'no-update', reports: [bad] }, 1],
    [
      'applied but report not delivered',
      { outcome: 'applied', reports: [ok], error: 'Report not delivered' },
      1,
    ],
    ['failed', { outcome: 'failed', reports: [bad] }, 1],
    ['rejected', { outcome: 'rejected', reports: [] }, 1],
    ['checkin error', { outcome: 'error', reports: [] }, 1],
    ['script asked to exit', { outcome: 'exit', reports: [] }, 3],
  ])('%s → %i', (_name, result, code) => {
    expect(exitCodeOf(result)).toBe(code);
  });
});

describe('StreamLogger', () => {
  it('writes timestamped lines off a TTY, hides debug unless verbose, and logs progress per 10%', () => {
    const out: string[] = [];
    const log = new StreamLogger({
      verbose: false,
      tty: false,
      write: (t) => out.push(t),
      now: () => new Date(0),
    });
    log.debug('hidden');
    log.info('hello');
    for (let i = 0; i <= 100; i++) log.progress(i * 1024, 100 * 1024);
    expect(out[0]).toBe('1970-01-01T00:00:00.000Z info hello\n');
    expect(out.length).toBe(1 + 11);
    expect(out.at(-1)).toMatch(/Downloaded 0\.1 of 0\.1 MiB \(100%\)/);
  });

  it('redraws one progress line on a TTY and ends it before the next log line', () => {
    const out: string[] = [];
    const log = new StreamLogger({ verbose: true, tty: true, write: (t) => out.push(t) });
    log.progress(512, 1024);
    log.warn('careful');
    expect(out).toEqual([`\r[${'#'.repeat(15)}${'-'.repeat(15)}]  50% 0.0/0.0 MiB`, '\n', 'warn: careful\n']);
  });
});
