/** Which proxy a URL goes through (agent/proxy.ts): the variables as curl reads them, NO_PROXY rules. */
import { describe, expect, it } from 'vitest';
import {
  ProxySettingError,
  proxyAuthorization,
  proxyFor,
  proxyRequestHeaders,
  proxySettingsFromEnv,
  requestTarget,
} from '#agent/proxy.ts';

function via(target: string, env: NodeJS.ProcessEnv): string | undefined {
  return proxyFor(new URL(target), proxySettingsFromEnv(env))?.href;
}

const BOTH = { HTTPS_PROXY: 'http://secure-proxy:3128', HTTP_PROXY: 'http://plain-proxy:8080' };

describe('proxySettingsFromEnv + proxyFor', () => {
  it('sends https targets to HTTPS_PROXY and http targets to HTTP_PROXY, nothing when unset', () => {
    expect(via('https://cloud.example/x', BOTH)).toBe('http://secure-proxy:3128/');
    expect(via('http://cloud.example/x', BOTH)).toBe('http://plain-proxy:8080/');
    expect(via('http://cloud.example/x', { HTTPS_PROXY: BOTH.HTTPS_PROXY })).toBeUndefined();
    expect(via('https://cloud.example/x', {})).toBeUndefined();
  });

  it('reads the lower-case spellings too, and they win over upper case', () => {
    expect(via('https://a.example/', { https_proxy: 'http://lower:1' })).toBe('http://lower:1/');
    expect(via('http://a.example/', { http_proxy: 'http://lower:2' })).toBe('http://lower:2/');
    expect(via('https://a.example/', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1' })).toBe(
      'http://lower:1/',
    );
    expect(via('https://a.example/', { ...BOTH, no_proxy: 'a.example' })).toBeUndefined();
  });

  it('takes a proxy without a scheme as http://, as curl does', () => {
    expect(via('https://a.example/', { HTTPS_PROXY: 'proxy.corp:3128' })).toBe('http://proxy.corp:3128/');
  });

  it.each([
    ['exact host', 'cloud.example', 'https://cloud.example/', true],
    ['host is case-insensitive', 'Cloud.Example', 'https://CLOUD.example/', true],
    ['domain suffix with a dot', '.example', 'https://cloud.example/', true],
    ['domain suffix without a dot covers subdomains', 'example', 'https://a.b.example/', true],
    ['*.domain', '*.example', 'https://cloud.example/', true],
    ['suffix needs a label boundary', 'example', 'https://badexample/', false],
    ['another host', 'other.example', 'https://cloud.example/', false],
    ['host:port matching the port', 'cloud.example:8443', 'https://cloud.example:8443/', true],
    ['host:port with another port', 'cloud.example:8443', 'https://cloud.example/', false],
    ['host:port against the default port', 'cloud.example:443', 'https://cloud.example/', true],
    ['everything', '*', 'https://anything.example/', true],
    ['a list with spaces', 'a.example, cloud.example ,b.example', 'https://cloud.example/', true],
    ['an IP address', '10.1.2.3', 'http://10.1.2.3:8080/', true],
    ['an IP address is not a suffix', '2.3', 'http://10.1.2.3/', false],
    ['an IPv4 network', '10.0.0.0/8', 'http://10.1.2.3/', true],
    ['outside the network', '10.0.0.0/8', 'http://11.1.2.3/', false],
    ['an IPv6 address', '::1', 'http://[::1]:4000/', true],
    ['an IPv6 address with a port', '[::1]:4000', 'http://[::1]:4000/', true],
    ['empty', '', 'https://cloud.example/', false],
  ])('NO_PROXY %s: %j for %s bypasses: %s', (_name, noProxy, target, direct) => {
    expect(via(target, { ...BOTH, NO_PROXY: noProxy }) === undefined).toBe(direct);
  });

  it.each([
    [
      'HTTPS_PROXY',
      'socks5://proxy:1080',
      'HTTPS_PROXY: socks5: proxies are not supported; use an http:// or https:// proxy',
    ],
    ['http_proxy', 'http://[bad', 'http_proxy: "http://[bad" is not a URL; e.g. http://proxy.example:3128'],
  ])('refuses %s=%s with one line naming the variable', (name, value, message) => {
    expect(() => proxySettingsFromEnv({ [name]: value })).toThrow(ProxySettingError);
    expect(() => proxySettingsFromEnv({ [name]: value })).toThrow(message);
  });
});

describe('proxy requests', () => {
  it('turns userinfo into Basic credentials, percent-decoded', () => {
    expect(proxyAuthorization(new URL('http://us%40er:p%3Ass@proxy:3128'))).toBe(
      `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`,
    );
    expect(proxyAuthorization(new URL('http://proxy:3128'))).toBeUndefined();
  });

  it('asks an http proxy for an http target by absolute URI with the credentials; a tunnel by path', () => {
    const proxy = new URL('http://u:p@proxy:3128');
    const plain = new URL('http://cloud.example:4000/tok/provision/update?x=1');
    const secure = new URL('https://cloud.example/tok/provision/update?x=1');
    expect(requestTarget(plain, proxy)).toBe('http://cloud.example:4000/tok/provision/update?x=1');
    expect(proxyRequestHeaders(plain, proxy)).toEqual({ 'proxy-authorization': 'Basic dTpw' });
    expect(requestTarget(secure, proxy)).toBe('/tok/provision/update?x=1');
    expect(proxyRequestHeaders(secure, proxy)).toEqual({});
    expect(requestTarget(plain, undefined)).toBe('/tok/provision/update?x=1');
  });
});
