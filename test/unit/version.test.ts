import fc from 'fast-check';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { compilePolicy } from '#core/policy.ts';
import type { DeviceCheckin } from '#core/types.ts';
import {
  compareVersions,
  deviceContext,
  isSemver,
  parseVersion,
  precedenceKey,
  samePrecedence,
  sortByVersionDescending,
} from '#core/version.ts';

const numericPart = fc.oneof(fc.nat({ max: 20 }), fc.nat({ max: 2 ** 40 }));
const numericId = numericPart.map(String);
const alphaId = fc.stringMatching(/^[0-9]{0,2}[A-Za-z-][0-9A-Za-z-]{0,5}$/);
const prerelease = fc.array(fc.oneof(numericId, alphaId, fc.constantFrom('alpha', 'beta', 'rc', '1', '0')), {
  minLength: 1,
  maxLength: 4,
});
const build = fc.array(fc.stringMatching(/^[0-9A-Za-z-]{1,6}$/), { minLength: 1, maxLength: 3 });
const version = fc
  .record({
    major: fc.oneof(fc.nat({ max: 3 }), numericPart),
    minor: fc.nat({ max: 3 }),
    patch: fc.nat({ max: 3 }),
    pre: fc.option(prerelease, { nil: undefined }),
    build: fc.option(build, { nil: undefined }),
  })
  .map(
    ({ major, minor, patch, pre, build }) =>
      `${major}.${minor}.${patch}${pre ? `-${pre.join('.')}` : ''}${build ? `+${build.join('.')}` : ''}`,
  );

describe('isSemver', () => {
  it.each([
    '0.0.0',
    '1.2.3',
    '10.20.30',
    '1.0.0-alpha',
    '1.0.0-alpha.1',
    '1.0.0-0.3.7',
    '1.0.0-x.7.z.92',
    '1.0.0-x-y-z.--',
    '1.0.0-alpha+001',
    '1.0.0+20130313144700',
    '1.0.0-beta+exp.sha.5114f85',
    '1.0.0+21AF26D3----117B344092BD',
    '1.0.0-0A.is.legal',
    '9007199254740991.0.0',
  ])('accepts %s', (v) => {
    expect(isSemver(v)).toBe(true);
  });

  it.each([
    '',
    '1',
    '1.2',
    '1.2.3.4',
    'v1.2.3',
    '=1.2.3',
    ' 1.2.3',
    '1.2.3 ',
    '1.2.3\n',
    '01.2.3',
    '1.02.3',
    '1.2.03',
    '1.2.3-01',
    '1.2.3-',
    '1.2.3+',
    '1.2.3-a..b',
    '1.2.3-a_b',
    '1.2.3+a+b',
    '1.2.x',
    '1.2.3-é',
    '9007199254740992.0.0',
    `1.2.3-${'a'.repeat(251)}`,
  ])('rejects %j', (v) => {
    expect(isSemver(v)).toBe(false);
  });

  it('rejects non-strings without throwing', () => {
    expect(isSemver(123 as unknown as string)).toBe(false);
    expect(isSemver(undefined as unknown as string)).toBe(false);
  });

  it('accepts every generated version', () => {
    fc.assert(fc.property(version, (v) => isSemver(v)));
  });
});

describe('parseVersion', () => {
  it('splits the parts', () => {
    expect(parseVersion('1.22.333-rc.1+build.5')).toEqual({
      major: 1,
      minor: 22,
      patch: 333,
      prerelease: 'rc.1',
      build: 'build.5',
      raw: '1.22.333-rc.1+build.5',
    });
    expect(parseVersion('2.0.0').prerelease).toBe('');
  });

  it('throws the documented message', () => {
    expect(() => parseVersion('1.2')).toThrow(new ValidationError('Invalid version "1.2": not SemVer 2.0'));
    expect(() => parseVersion('x', '--version')).toThrow('Invalid --version "x": not SemVer 2.0');
  });

  it('echoes at most 60 characters of input, on one line', () => {
    const err = (() => {
      try {
        parseVersion(`1.2.3\n${'z'.repeat(500)}`);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect(err!.message).not.toContain('\n');
    expect(err!.message.length).toBeLessThan(100);
  });
});

describe('compareVersions', () => {
  it('follows the precedence example of the SemVer 2.0 specification', () => {
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '2.0.0',
      '2.1.0',
      '2.1.1',
    ];
    for (let i = 0; i + 1 < ordered.length; i++) {
      expect(compareVersions(ordered[i]!, ordered[i + 1]!)).toBeLessThan(0);
      expect(compareVersions(ordered[i + 1]!, ordered[i]!)).toBeGreaterThan(0);
    }
  });

  it('compares huge numeric prerelease identifiers exactly', () => {
    expect(compareVersions('1.0.0-99999999999999999999', '1.0.0-100000000000000000000')).toBeLessThan(0);
    expect(compareVersions('1.0.0-18446744073709551617', '1.0.0-18446744073709551616')).toBeGreaterThan(0);
  });

  it('ignores build metadata', () => {
    expect(compareVersions('1.2.3+a', '1.2.3+b')).toBe(0);
    expect(samePrecedence('1.2.3-rc.1+x', '1.2.3-rc.1')).toBe(true);
    expect(samePrecedence('1.2.3-rc.1', '1.2.3-rc.2')).toBe(false);
  });

  it('throws on an invalid operand', () => {
    expect(() => compareVersions('1.2.3', 'v1.2.4')).toThrow('Invalid version "v1.2.4": not SemVer 2.0');
  });

  it('agrees with semver.compare on generated versions', () => {
    fc.assert(
      fc.property(version, version, (a, b) => Math.sign(compareVersions(a, b)) === semver.compare(a, b)),
      { numRuns: 2000 },
    );
  });

  it('agrees with semver.compare on versions that share major.minor.patch', () => {
    const samePatch = fc
      .tuple(fc.option(prerelease, { nil: undefined }), fc.option(build, { nil: undefined }))
      .map(([pre, b]) => `1.2.3${pre ? `-${pre.join('.')}` : ''}${b ? `+${b.join('.')}` : ''}`);
    fc.assert(
      fc.property(samePatch, samePatch, (a, b) => Math.sign(compareVersions(a, b)) === semver.compare(a, b)),
      { numRuns: 2000 },
    );
  });
});

describe('precedenceKey', () => {
  it('drops build metadata only', () => {
    expect(precedenceKey('1.2.3-rc.1+build.5')).toBe('1.2.3-rc.1');
    expect(precedenceKey('1.2.3')).toBe('1.2.3');
  });

  it('is equal exactly when precedence is equal', () => {
    fc.assert(
      fc.property(
        version,
        version,
        (a, b) => (precedenceKey(a) === precedenceKey(b)) === samePrecedence(a, b),
      ),
    );
  });
});

describe('sortByVersionDescending', () => {
  it('orders by descending precedence and keeps input order among equals (stable)', () => {
    const items = fc.array(
      version.map((v) => ({ version: v })),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(items, (list) => {
        const tagged = list.map((item, index) => ({ ...item, index }));
        const sorted = sortByVersionDescending(tagged);
        expect(sorted).toHaveLength(tagged.length);
        expect(new Set(sorted)).toEqual(new Set(tagged));
        for (let i = 0; i + 1 < sorted.length; i++) {
          const c = compareVersions(sorted[i]!.version, sorted[i + 1]!.version);
          expect(c).toBeGreaterThanOrEqual(0);
          if (c === 0) expect(sorted[i]!.index).toBeLessThan(sorted[i + 1]!.index);
        }
      }),
    );
  });

  it('does not modify its input', () => {
    const input = [{ version: '1.0.0' }, { version: '2.0.0' }];
    const sorted = sortByVersionDescending(input);
    expect(sorted.map((x) => x.version)).toEqual(['2.0.0', '1.0.0']);
    expect(input.map((x) => x.version)).toEqual(['1.0.0', '2.0.0']);
  });
});

describe('deviceContext', () => {
  const device: DeviceCheckin = {
    id: 'dev-1',
    product: 'router',
    version: '1.4.2-beta.3',
    body: {
      id: 'dev-1',
      product: 'router',
      version: '1.4.2-beta.3',
      major: 'spoofed',
      hw: { rev: 'B' },
      ram: '256',
    },
  };

  it('holds the body, the derived version parts and a null newVersion', () => {
    const ctx = deviceContext(device);
    expect(ctx).toEqual({
      id: 'dev-1',
      product: 'router',
      version: '1.4.2-beta.3',
      major: 1,
      minor: 4,
      patch: 2,
      prerelease: 'beta.3',
      newVersion: null,
      hw: { rev: 'B' },
      ram: '256',
    });
  });

  it('inherits nothing, so inherited names resolve to nothing (nested objects too)', () => {
    const ctx = deviceContext({ ...device, body: { ...device.body, hw: { rev: 2 } } });
    const prototype = Object.getPrototypeOf(ctx) as object;
    expect(Object.getPrototypeOf(prototype)).toBeNull();
    expect(Object.isFrozen(prototype)).toBe(true);
    expect(ctx.constructor).toBeUndefined();
    expect(ctx.toString).toBeUndefined();
    expect((ctx.hw as Record<string, unknown>).constructor).toBeUndefined();
    expect(compilePolicy('hw.rev == 2 && toString == null && hw.valueOf == null').evaluate(ctx)).toBe(true);
  });

  it('gives prerelease "" for a release, and a fresh object per call', () => {
    const release = { ...device, version: '2.0.0', body: { version: '2.0.0' } };
    const a = deviceContext(release);
    const b = deviceContext(release);
    a.newVersion = '3.0.0';
    expect(a.prerelease).toBe('');
    expect(b.newVersion).toBeNull();
  });
});
