import { describe, expect, it } from 'vitest';
import { isValidId, isValidProduct, MAX_BODY_BYTES, parseCheckin, parseReport } from '#core/device.ts';
import { PayloadTooLargeError, ValidationError } from '#core/errors.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const json = (value: unknown): Uint8Array => bytes(JSON.stringify(value));
const base = { id: 'dev-001', product: 'router', version: '1.2.3' };

/** The message of the ValidationError `fn` throws. */
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('isValidId / isValidProduct', () => {
  it('accept the allowed set within the length limits', () => {
    expect(isValidId('A-z_0.9:x')).toBe(true);
    expect(isValidId('x'.repeat(128))).toBe(true);
    expect(isValidProduct('p'.repeat(64))).toBe(true);
  });

  it.each(['', 'a b', 'a/b', 'é', 'a\n', '<x>'])('reject %j', (s) => {
    expect(isValidId(s)).toBe(false);
    expect(isValidProduct(s)).toBe(false);
  });

  it('reject over-long values and non-strings', () => {
    expect(isValidId('x'.repeat(129))).toBe(false);
    expect(isValidProduct('p'.repeat(65))).toBe(false);
    expect(isValidId(42 as unknown as string)).toBe(false);
  });
});

describe('parseCheckin', () => {
  it('accepts a minimal body and keeps every property', () => {
    const body = { ...base, iotoVersion: '2.4.0', test: true, ram: '256', hw: { rev: 'B', flash: 16 } };
    expect(parseCheckin(json(body))).toEqual({ id: 'dev-001', product: 'router', version: '1.2.3', body });
  });

  it('accepts custom values of every allowed kind, strings as the C client sends them', () => {
    const body = { ...base, s: 'true', n: -1.5e3, b: false, z: null, $x: 1, _y: 2, 'try-beta-features': '1' };
    expect(parseCheckin(json(body)).body).toEqual(body);
  });

  it('accepts objects nested 4 levels deep and refuses a 5th', () => {
    const four = { ...base, a: { b: { c: { d: { e: 1 } } } } };
    expect(parseCheckin(json(four)).body).toEqual(four);
    const five = { ...base, a: { b: { c: { d: { e: { f: 1 } } } } } };
    expect(messageOf(() => parseCheckin(json(five)))).toBe(
      'Invalid "a.b.c.d.e": objects nest at most 4 levels deep; flatten it',
    );
  });

  it('accepts a string of 1024 characters and refuses 1025', () => {
    expect(parseCheckin(json({ ...base, note: 'é'.repeat(1024) })).body.note).toHaveLength(1024);
    expect(messageOf(() => parseCheckin(json({ ...base, note: 'x'.repeat(1025) })))).toBe(
      'Invalid "note": strings are limited to 1024 characters',
    );
  });

  it('accepts a body of exactly 16 KiB and refuses one byte more with PayloadTooLargeError', () => {
    // JSON allows trailing whitespace, which pads the body without tripping the 1 KiB string limit.
    const exact = new Uint8Array(MAX_BODY_BYTES).fill(0x20);
    exact.set(json(base));
    expect(parseCheckin(exact).id).toBe('dev-001');
    const over = new Uint8Array(MAX_BODY_BYTES + 1).fill(0x20);
    over.set(json(base));
    expect(() => parseCheckin(over)).toThrow(PayloadTooLargeError);
    expect(() => parseCheckin(over)).toThrow(
      'Request body too large: 16385 bytes; the limit is 16384 bytes (16 KiB)',
    );
  });

  it('refuses invalid UTF-8, non-JSON and non-objects', () => {
    expect(messageOf(() => parseCheckin(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe(
      'Invalid body: not valid UTF-8; send JSON encoded as UTF-8',
    );
    expect(messageOf(() => parseCheckin(bytes('{"id":')))).toBe('Invalid body: not JSON; send a JSON object');
    expect(messageOf(() => parseCheckin(bytes('')))).toBe('Invalid body: not JSON; send a JSON object');
    for (const text of ['[]', 'null', '"x"', '3']) {
      expect(messageOf(() => parseCheckin(bytes(text)))).toBe(
        'Invalid body: send a JSON object, not an array or a bare value',
      );
    }
  });

  it('accepts a UTF-8 byte order mark', () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...json(base)]);
    expect(parseCheckin(withBom).id).toBe('dev-001');
  });

  it.each([
    [{ ...base, id: undefined }, 'Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -'],
    [{ ...base, id: 'a b' }, 'Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -'],
    [{ ...base, id: 7 }, 'Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -'],
    [{ ...base, id: 'x'.repeat(129) }, 'Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -'],
    [
      { ...base, product: '' },
      'Invalid "product": use 1–64 characters of A-Z a-z 0-9 . _ : -, not only dots',
    ],
    [
      { ...base, product: 'p'.repeat(65) },
      'Invalid "product": use 1–64 characters of A-Z a-z 0-9 . _ : -, not only dots',
    ],
    [{ ...base, version: '1.2' }, 'Invalid version "1.2": not SemVer 2.0'],
    [{ ...base, version: 'v1.2.3' }, 'Invalid version "v1.2.3": not SemVer 2.0'],
    [
      { ...base, version: 1.2 },
      'Invalid "version": send the running version as a SemVer 2.0 string, e.g. "1.2.3"',
    ],
    [
      { id: 'd', product: 'p' },
      'Invalid "version": send the running version as a SemVer 2.0 string, e.g. "1.2.3"',
    ],
    [{ ...base, iotoVersion: 2 }, 'Invalid "iotoVersion": send a string, e.g. "2.4.0"'],
    [{ ...base, tags: ['a'] }, 'Invalid "tags": arrays are not supported; send a string or a nested object'],
    [
      { ...base, hw: { ids: [] } },
      'Invalid "hw.ids": arrays are not supported; send a string or a nested object',
    ],
    [{ ...base, test: [] }, 'Invalid "test": arrays are not supported; send a string or a nested object'],
    [
      { ...base, '1st': 1 },
      'Invalid property name "1st": use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $',
    ],
    [
      { ...base, 'a b': 1 },
      'Invalid property name "a b": use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $',
    ],
    [{ ...base, '': 1 }, 'Invalid property name "": use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $'],
    [
      { ...base, '-x': 1 },
      'Invalid property name "-x": use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $',
    ],
    [
      { ...base, hw: { 'r.v': 1 } },
      'Invalid property name "hw.r.v": use A-Z a-z 0-9 _ $ -, starting with a letter, _ or $',
    ],
    [{ ...base, constructor: 'x' }, 'Invalid property name "constructor": reserved, use another name'],
    [
      { ...base, hw: { a: { prototype: 1 } } },
      'Invalid property name "hw.a.prototype": reserved, use another name',
    ],
  ])('refuses %j', (body, message) => {
    expect(messageOf(() => parseCheckin(json(body)))).toBe(message);
  });

  it('refuses __proto__ keys at any depth (JSON.parse makes them own properties)', () => {
    expect(
      messageOf(() => parseCheckin(bytes('{"id":"d","product":"p","version":"1.0.0","__proto__":{"x":1}}'))),
    ).toBe('Invalid property name "__proto__": reserved, use another name');
    expect(
      messageOf(() => parseCheckin(bytes('{"id":"d","product":"p","version":"1.0.0","a":{"__proto__":1}}'))),
    ).toBe('Invalid property name "a.__proto__": reserved, use another name');
  });

  it('refuses numbers that overflow to Infinity', () => {
    expect(messageOf(() => parseCheckin(bytes('{"id":"d","product":"p","version":"1.0.0","n":1e999}')))).toBe(
      'Invalid "n": numbers must be finite',
    );
  });

  it('echoes at most 60 characters of client input, on one line', () => {
    const message = messageOf(() => parseCheckin(json({ ...base, version: `1.2.3\n${'9'.repeat(2000)}` })));
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(110);
    const key = `k${'x'.repeat(500)} `;
    const keyMessage = messageOf(() => parseCheckin(json({ ...base, [key]: 1 })));
    expect(keyMessage.length).toBeLessThan(160);
  });
});

describe('parseReport', () => {
  const report = { id: 'dev-001', update: 'upd_01:a.b-c' };

  it('accepts boolean and string success and derives status', () => {
    expect(parseReport(json({ ...report, success: true }))).toEqual({
      ...report,
      success: true,
      status: 'applied',
    });
    expect(parseReport(json({ ...report, success: 'false' }))).toEqual({
      ...report,
      success: false,
      status: 'failed',
    });
    expect(parseReport(json({ ...report, success: 'true' })).success).toBe(true);
  });

  it('keeps status, error and version, ignores other properties, and treats null as absent', () => {
    expect(
      parseReport(
        json({ ...report, success: false, status: 'rejected', error: 'bad sig', version: '1.0.0', x: [1] }),
      ),
    ).toEqual({ ...report, success: false, status: 'rejected', error: 'bad sig', version: '1.0.0' });
    expect(parseReport(json({ ...report, success: true, status: null, error: null, version: null }))).toEqual(
      {
        ...report,
        success: true,
        status: 'applied',
      },
    );
    expect(parseReport(json({ ...report, success: true, status: 'downloaded' })).status).toBe('downloaded');
  });

  it.each([
    [{ update: 'u', success: true }, 'Invalid "id": use 1–128 characters of A-Z a-z 0-9 . _ : -'],
    [
      { id: 'd', success: true },
      'Invalid "update": send the update id from the checkin answer (1–128 characters of A-Z a-z 0-9 . _ : -)',
    ],
    [
      { id: 'd', update: 'u/1', success: true },
      'Invalid "update": send the update id from the checkin answer (1–128 characters of A-Z a-z 0-9 . _ : -)',
    ],
    [{ id: 'd', update: 'u' }, 'Invalid "success": use true or false'],
    [{ id: 'd', update: 'u', success: 1 }, 'Invalid "success": use true or false'],
    [{ id: 'd', update: 'u', success: 'yes' }, 'Invalid "success": use true or false'],
    [
      { id: 'd', update: 'u', success: true, status: 'done' },
      'Invalid "status": use one of downloaded, verified, applied, failed, rejected',
    ],
    [
      { id: 'd', update: 'u', success: true, status: 'failed' },
      'Invalid "status": "failed" contradicts "success": true; failed and rejected go with false, the others with true',
    ],
    [
      { id: 'd', update: 'u', success: false, status: 'applied' },
      'Invalid "status": "applied" contradicts "success": false; failed and rejected go with false, the others with true',
    ],
    [
      { id: 'd', update: 'u', success: false, error: 'e'.repeat(1025) },
      'Invalid "error": send a string of at most 1024 characters',
    ],
    [
      { id: 'd', update: 'u', success: false, error: 5 },
      'Invalid "error": send a string of at most 1024 characters',
    ],
    [{ id: 'd', update: 'u', success: true, version: '1.0' }, 'Invalid version "1.0": not SemVer 2.0'],
    [
      { id: 'd', update: 'u', success: true, version: 1 },
      'Invalid "version": send a SemVer 2.0 string, e.g. "1.2.3"',
    ],
  ])('refuses %j', (body, message) => {
    expect(messageOf(() => parseReport(json(body)))).toBe(message);
  });

  it('applies the size and UTF-8 rules of checkins', () => {
    expect(() => parseReport(new Uint8Array(MAX_BODY_BYTES + 1))).toThrow(PayloadTooLargeError);
    expect(messageOf(() => parseReport(new Uint8Array([0xc3])))).toBe(
      'Invalid body: not valid UTF-8; send JSON encoded as UTF-8',
    );
  });
});

describe('looser JSON that existing clients send', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('accepts a trailing comma (EmbedThis updater 1.1) and JSON5 (Ioto tools)', () => {
    expect(parseCheckin(enc('{"id":"d1","product":"demo","version":"1.0.0",}')).id).toBe('d1');
    expect(parseCheckin(enc("{id: 'd2', product: 'demo', version: '1.0.0', rev: '3'}")).body.rev).toBe('3');
  });
  it('still sees reserved keys and still rejects what is not JSON5 either', () => {
    expect(() =>
      parseCheckin(enc("{id: 'd', product: 'demo', version: '1.0.0', __proto__: {x: 1},}")),
    ).toThrow(/__proto__/);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(() => parseCheckin(enc('{"id":'))).toThrow('Invalid body: not JSON; send a JSON object');
  });
});
