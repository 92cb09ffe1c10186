/** The CLI's pure rules: update settings validation, update ids, and the one-line error messages. */
import { describe, expect, it } from 'vitest';
import { newUpdateId } from '#admin/publish.ts';
import { checkSettings, settingsOf, type UpdateSettings } from '#admin/settings.ts';
import { CliError, errorLine } from '#cli/errors.ts';
import { PolicyError, ValidationError } from '#core/errors.ts';
import { StoreUnavailableError } from '#functions/errors.ts';

const base: UpdateSettings = { policy: '', description: '' };

describe('checkSettings', () => {
  it.each<[string, Partial<UpdateSettings>]>([
    ['no limits', {}],
    ['percentage at the top of its range', { percentage: 100 }],
    ['a fractional percentage', { percentage: 0.5 }],
    ['the smallest percentage, one bucket in 10,000', { percentage: 0.01 }],
    ['a percentage with two decimals', { percentage: 12.34 }],
    ['a percentage with two decimals that binary cannot hold', { percentage: 0.29 }],
    ['a limit of one device', { limit: 1 }],
    ['rate with period', { rate: 5, period: 3600 }],
    ['abort threshold with minimum', { abortThreshold: 100, abortMin: 1 }],
    ['a policy', { policy: 'region == "eu"' }],
    ['phases with a gate and a start', { phases: '1%,10%@1d', gate: 'success>=95%', startAt: '2026-12-01' }],
  ])('accepts %s', (_name, settings) => {
    expect(() => checkSettings('1.0.0', false, { ...base, ...settings })).not.toThrow();
  });

  it.each<[string, Partial<UpdateSettings>, RegExp]>([
    [
      'percentage 0',
      { percentage: 0 },
      /^Invalid --percentage 0: use 0\.01 to 100 with at most two decimals \(devices are split in 0\.01 % steps\)$/,
    ],
    [
      'percentage 1e-9, which reaches nobody',
      { percentage: 1e-9 },
      /^Invalid --percentage 1e-9: use 0\.01 to 100/,
    ],
    ['percentage below one bucket', { percentage: 0.005 }, /^Invalid --percentage 0\.005: use 0\.01 to 100/],
    [
      'percentage with three decimals',
      { percentage: 12.345 },
      /^Invalid --percentage 12\.345: use 0\.01 to 100/,
    ],
    ['percentage over 100', { percentage: 100.5 }, /Invalid --percentage 100\.5/],
    ['percentage NaN', { percentage: Number.NaN }, /Invalid --percentage NaN/],
    ['limit 0', { limit: 0 }, /^Invalid --limit 0: use a whole number of devices, at least 1$/],
    ['fractional limit', { limit: 1.5 }, /Invalid --limit 1\.5/],
    ['rate without period', { rate: 5 }, /^--rate and --period go together/],
    ['period without rate', { period: 60 }, /^--rate and --period go together/],
    ['rate 0', { rate: 0, period: 60 }, /Invalid --rate 0/],
    ['fractional period', { rate: 1, period: 0.5 }, /Invalid --period 0\.5/],
    ['threshold without minimum', { abortThreshold: 20 }, /^--abort-threshold and --abort-min go together/],
    ['minimum without threshold', { abortMin: 10 }, /^--abort-threshold and --abort-min go together/],
    ['threshold 0', { abortThreshold: 0, abortMin: 1 }, /Invalid --abort-threshold 0/],
    ['minimum 0', { abortThreshold: 10, abortMin: 0 }, /Invalid --abort-min 0/],
    ['a long description', { description: 'x'.repeat(1025) }, /--description is too long/],
    [
      'phases with a percentage',
      { phases: '1%,10%@1d', percentage: 5 },
      /^--phases and --percentage exclude/,
    ],
    [
      'a gate without phases',
      { gate: 'success>=95%' },
      /^--gate needs --phases \(on edit, remove it with --gate none\)$/,
    ],
    ['a start without phases', { startAt: '2026-12-01' }, /^--start-at needs --phases/],
    ['bad phases', { phases: '10%,5%@1h' }, /^--phases percentages must increase/],
    ['a bad gate', { phases: '1%', gate: 'fast' }, /^Invalid --gate term "fast"/],
    ['a bad start', { phases: '1%', startAt: 'now' }, /^Invalid --start-at "now"/],
  ])('refuses %s', (_name, settings, message) => {
    expect(() => checkSettings('1.0.0', false, { ...base, ...settings })).toThrow(ValidationError);
    expect(() => checkSettings('1.0.0', false, { ...base, ...settings })).toThrow(message);
  });

  it('refuses a prerelease with an empty policy, and accepts it with one', () => {
    expect(() => checkSettings('2.0.0-beta.1', false, base)).toThrow(
      /^Prerelease 2\.0\.0-beta\.1 needs a --policy/,
    );
    expect(() => checkSettings('2.0.0-beta.1', false, { ...base, policy: '   ' })).toThrow(
      /needs a --policy/,
    );
    expect(() => checkSettings('2.0.0-beta.1', false, { ...base, policy: 'test == true' })).not.toThrow();
  });

  it('refuses --allow-downgrade with an empty policy', () => {
    expect(() => checkSettings('1.0.0', true, base)).toThrow(/^--allow-downgrade needs a non-empty --policy/);
    expect(() => checkSettings('1.0.0', true, { ...base, policy: 'version == "1.1.0"' })).not.toThrow();
  });

  it('throws the PolicyError of a policy that does not compile', () => {
    let caught: unknown;
    try {
      checkSettings('1.0.0', false, { ...base, policy: 'a == eval(1)' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as PolicyError).column).toBeGreaterThan(1);
  });
});

describe('settingsOf', () => {
  it('keeps phase settings in their canonical spelling', () => {
    const s = settingsOf({
      phases: '1%, 10%@24 hrs',
      gate: 'min=3,success>=90%',
      startAt: '2026-12-01T01:00:00+01:00',
    });
    expect(s).toMatchObject({
      phases: '1%,10%@1d',
      gate: 'success>=90%,min=3',
      startAt: '2026-12-01T00:00:00.000Z',
    });
  });
});

describe('newUpdateId', () => {
  it('is 10 characters of lower-case base32 and does not repeat', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newUpdateId();
      expect(id).toMatch(/^[a-z2-7]{10}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(2000);
  });
});

describe('errorLine', () => {
  it('shows a policy error with its column and the excerpt as detail', () => {
    const err = new PolicyError('Unknown function "eval"', 6, 'a == eval(1)\n     ^');
    expect(errorLine(err)).toEqual({
      message: 'Invalid policy: Unknown function "eval" at column 6',
      detail: 'a == eval(1)\n     ^',
    });
  });

  it('keeps messages on one line', () => {
    expect(errorLine(new ValidationError('first\n  second')).message).toBe('first second');
    expect(errorLine(new CliError('a\nb', 'detail')).message).toBe('a b');
    expect(errorLine(new CliError('a', 'detail')).detail).toBe('detail');
  });

  it('names the table of an unreachable store and what to do', () => {
    const store = { where: 'DynamoDB at http://127.0.0.1:9', hint: 'start the local cloud with npm start' };
    expect(errorLine(new StoreUnavailableError('dynamodb'), store).message).toBe(
      'DynamoDB at http://127.0.0.1:9 unreachable or unavailable: start the local cloud with npm start',
    );
  });

  it('points AWS credential failures at the credentials', () => {
    const err = new Error('The security token included in the request is invalid.');
    err.name = 'UnrecognizedClientException';
    expect(errorLine(err).message).toMatch(
      /^AWS refused the request \(UnrecognizedClientException: .*check your AWS credentials$/,
    );
  });
});
