/** Which Host headers and URLs name a console listener (the DNS-rebinding check's input). */
import { describe, expect, it } from 'vitest';
import { allowedHosts, consoleUrl, newSecret } from '#console/access.ts';

describe('console access', () => {
  it('accepts the loopback names of a loopback listener, with its port only', () => {
    expect([...allowedHosts({ host: '127.0.0.1', port: 4080 })].sort()).toEqual([
      '127.0.0.1:4080',
      '[::1]:4080',
      'localhost:4080',
    ]);
    expect(allowedHosts({ host: '::1', port: 9 }).has('[::1]:9')).toBe(true);
  });

  it('accepts only its own name for a listener off loopback', () => {
    expect([...allowedHosts({ host: 'console.lan', port: 80 })]).toEqual(['console.lan:80']);
  });

  it('prints a URL with a fresh, URL-safe secret of 32 bytes', () => {
    const a = newSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newSecret()).not.toBe(a);
    expect(consoleUrl({ host: '::1', port: 4080 }, a)).toBe(`http://[::1]:4080/?secret=${a}`);
  });
});
