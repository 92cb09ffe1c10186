/**
 * The agent in a corporate network (issue 15 item 4): checkin, download and report of the real
 * single-file agent through a CONNECT proxy (plain and TLS) and an http proxy, NO_PROXY bypass, TLS
 * checked end to end through the tunnel; image redirects followed (≤ 5, https stays https, resumes
 * start again at the offered URL); `update.throttle` pacing the reads.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { downloadImage } from '#agent/download.ts';
import { UrlRefusedError } from '#agent/errors.ts';
import { postJson } from '#agent/http.ts';
import { streamGet } from '#agent/http-get.ts';
import { proxySettingsFromEnv } from '#agent/proxy.ts';
import {
  buildAgentBundle,
  makeCertificate,
  makeImage,
  offer,
  onceArgs,
  runAgent,
  startFakeCloud,
  startFaultProxy,
  startImageServer,
  type TestImage,
  type TlsFiles,
  writeAgentFiles,
} from './agent-fixtures.ts';
import { startRedirector, startTestProxy } from './proxy-fixtures.ts';

const KiB = 1024;
let dir: string;
let bundle: string;
let tls: TlsFiles & { certFile: string };
let image: TestImage;
let data: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-network-'));
  bundle = await buildAgentBundle(dir);
  tls = makeCertificate(dir);
  image = makeImage(join(dir, 'image.bin'), 640 * KiB + 3);
  data = readFileSync(image.path);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** The child's proxy variables: only those given, whatever the test runner's environment holds. */
function proxyEnv(vars: Record<string, string>): Record<string, string> {
  const none = {
    HTTPS_PROXY: '',
    https_proxy: '',
    HTTP_PROXY: '',
    http_proxy: '',
    NO_PROXY: '',
    no_proxy: '',
  };
  return { ...none, ...vars };
}

/** A device at 1.0.0 offered 1.1.0 from `imageUrl`, run once with `env`. */
async function runDevice(name: string, api: string, env: Record<string, string>) {
  const home = join(dir, name);
  const files = writeAgentFiles(home, { api, script: resolve('scripts/update') });
  const args = onceArgs(files, join(home, 'state'));
  return runAgent(bundle, args, { cwd: home, env });
}

async function started<T extends { close(): Promise<void> }>(server: Promise<T>): Promise<T> {
  const s = await server;
  cleanups.push(() => s.close());
  return s;
}

const authority = (url: string) => new URL(url).host;

describe('the real agent through a proxy', () => {
  it.each(['http', 'https'] as const)(
    'checks in, downloads and reports over HTTPS through CONNECT tunnels of an %s proxy, with its credentials',
    async (kind) => {
      const proxy = await started(startTestProxy(kind === 'https' ? tls : undefined));
      const server = await started(startImageServer(data, { tls }));
      const cloud = await started(startFakeCloud(tls));
      cloud.onCheckin = () => ({ body: offer({ url: server.url, image }) });
      const withCredentials = proxy.url.replace('://', '://dev%40site:s3cret@');
      const run = await runDevice(`tunnel-${kind}`, cloud.api, {
        ...proxyEnv({ HTTPS_PROXY: withCredentials }),
        NODE_EXTRA_CA_CERTS: tls.certFile,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(cloud.reports.at(-1)?.body).toMatchObject({ success: true, version: '1.1.0' });
      // Checkin, download, report: each a tunnel of its own, in that order.
      expect(proxy.visits.map((v) => v.request)).toEqual([
        `CONNECT ${authority(cloud.api)}`,
        `CONNECT ${authority(server.url)}`,
        `CONNECT ${authority(cloud.api)}`,
      ]);
      const basic = `Basic ${Buffer.from('dev@site:s3cret').toString('base64')}`;
      expect(proxy.visits.map((v) => v.authorization)).toEqual([basic, basic, basic]);
      expect(server.ranges).toEqual(['']);
    },
  );

  it.each([
    ['no NO_PROXY: all three go through the proxy', () => '', ['checkin', 'image', 'report']],
    [
      'NO_PROXY host:port of the image server',
      (image: string) => `example.invalid, ${image}`,
      ['checkin', 'report'],
    ],
    ['NO_PROXY=*', () => '*', []],
  ])('sends http targets to the http proxy by absolute URI, %s', async (_name, noProxy, expected) => {
    const proxy = await started(startTestProxy());
    const server = await started(startImageServer(data));
    const cloud = await started(startFakeCloud());
    cloud.onCheckin = () => ({ body: offer({ url: server.url, image }) });
    const run = await runDevice(`plain-${expected.length}`, cloud.api, {
      // The lower-case spelling, as curl reads it; the https proxy is a dead end no request may take.
      ...proxyEnv({
        http_proxy: proxy.url.replace('://', '://u:p@'),
        HTTPS_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: noProxy(authority(server.url)),
      }),
    });
    expect(run.code, run.stderr).toBe(0);
    const requests: Record<string, string> = {
      checkin: `POST ${cloud.api}/tok/provision/update`,
      image: `GET ${server.url}`,
      report: `POST ${cloud.api}/tok/provision/updateReport`,
    };
    expect(proxy.visits).toEqual(
      expected.map((name) => ({ request: requests[name], authorization: 'Basic dTpw' })),
    );
    expect(server.ranges).toEqual(['']);
    expect(cloud.reports.at(-1)?.body).toMatchObject({ success: true });
  });

  it("checks the target's name through the tunnel: a certificate for 127.0.0.1 does not pass for localhost", async () => {
    const proxy = await started(startTestProxy());
    const cloud = await started(startFakeCloud(tls));
    const api = cloud.api.replace('127.0.0.1', 'localhost');
    const run = await runDevice('wrong-name', api, {
      ...proxyEnv({ HTTPS_PROXY: proxy.url }),
      NODE_EXTRA_CA_CERTS: tls.certFile,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(proxy.visits.map((v) => v.request)).toEqual([`CONNECT ${authority(api)}`]);
    expect(cloud.checkins).toEqual([]);
  });
});

describe('proxy failures', () => {
  it('a proxy refusing CONNECT is one line naming the proxy and its answer, for checkin and download', async () => {
    const proxy = await started(startTestProxy());
    proxy.refuse = '407 Proxy Authentication Required';
    const settings = proxySettingsFromEnv({ HTTPS_PROXY: proxy.url.replace('://', '://u:wrong@') });
    const expected = `Proxy ${proxy.url} refused CONNECT to cloud.example:8443: HTTP 407 Proxy Authentication Required`;
    await expect(
      postJson(
        'https://cloud.example:8443/tok/provision/update',
        't',
        {},
        { timeoutMs: 5000, proxy: settings },
      ),
    ).rejects.toThrow(expected);
    const sink = { onHead: () => {}, onData: () => undefined };
    const get = streamGet('https://cloud.example:8443/i.bin', { idleTimeoutMs: 5000, proxy: settings }, sink);
    await expect(get).rejects.toThrow(expected);
    await get.catch((err: Error) => expect(err.message).toBe(expected));
    expect(proxy.visits.map((v) => v.request)).toEqual([
      'CONNECT cloud.example:8443',
      'CONNECT cloud.example:8443',
    ]);
  });

  it('verifies the certificate inside the tunnel: an untrusted one ends the download', async () => {
    const proxy = await started(startTestProxy());
    const server = await started(startImageServer(data, { tls }));
    const settings = proxySettingsFromEnv({ HTTPS_PROXY: proxy.url });
    const sink = { onHead: () => {}, onData: () => undefined };
    await expect(streamGet(server.url, { idleTimeoutMs: 5000, proxy: settings }, sink)).rejects.toThrow(
      /through proxy .*SELF_SIGNED/,
    );
    expect(server.ranges).toEqual([]);
    expect(proxy.visits).toHaveLength(1);
  });
});

describe('image redirects', () => {
  const download = (url: string, name: string, extra: Partial<Parameters<typeof downloadImage>[0]> = {}) =>
    downloadImage({
      url,
      size: image.size,
      file: join(dir, name),
      offset: 0,
      stallTimeoutMs: 5000,
      retry: { baseDelayMs: 10 },
      ...extra,
    });

  it('follows a chain of 5 (301, 302, 303, 307, 308) to the image', async () => {
    const server = await started(startImageServer(data));
    const redirector = await started(startRedirector(server.url));
    const result = await download(redirector.chain(5), 'five.img');
    expect(result.sha256).toBe(image.sha256);
    expect(redirector.requests.map((r) => r.path.replace(/\?.*/, ''))).toEqual([
      '/hop/5',
      '/hop/4',
      '/hop/3',
      '/hop/2',
      '/hop/1',
    ]);
    expect(server.ranges).toEqual(['']);
  });

  it('refuses a 6th redirect at once, with one line naming the origin', async () => {
    const server = await started(startImageServer(data));
    const redirector = await started(startRedirector(server.url));
    const failed = download(redirector.chain(6), 'six.img');
    await expect(failed).rejects.toBeInstanceOf(UrlRefusedError);
    await expect(failed).rejects.toThrow(
      `Image URL at ${new URL(redirector.chain(6)).origin} redirected more than 5 times (the last to ${new URL(server.url).origin})`,
    );
    expect(redirector.requests).toHaveLength(6);
    expect(server.ranges).toEqual([]);
  });

  it('resumes a cut download from the offered URL again, Range and all, through the redirects', async () => {
    const server = await started(startImageServer(data));
    const faults = await started(
      startFaultProxy(server.url, [
        { kind: 'cut', at: 100 * KiB },
        { kind: 'cut', at: 400 * KiB },
      ]),
    );
    const redirector = await started(startRedirector(faults.rewrite(server.url)));
    const result = await download(redirector.chain(2), 'resumed.img');
    expect(result.sha256).toBe(image.sha256);
    expect(result.resumedAt).toHaveLength(2);
    const firstHop = redirector.requests.filter((r) => r.path.startsWith('/hop/2'));
    expect(firstHop.map((r) => r.range)).toEqual(['', ...result.resumedAt.map((at) => `bytes=${at}-`)]);
    expect(server.ranges).toEqual(firstHop.map((r) => r.range));
  });

  it('never follows https to http: the real agent stops with one line and fetches nothing over http', async () => {
    const server = await started(startImageServer(data));
    const redirector = await started(startRedirector(server.url, tls));
    const cloud = await started(startFakeCloud());
    cloud.onCheckin = () => ({ body: offer({ url: redirector.chain(2), image }) });
    const run = await runDevice('downgrade', cloud.api, {
      ...proxyEnv({}),
      NODE_EXTRA_CA_CERTS: tls.certFile,
    });
    expect(run.code).toBe(1);
    const origin = new URL(redirector.chain(1)).origin;
    expect(run.stderr).toContain(
      `Image URL at ${origin} redirected to ${new URL(server.url).origin}: refused, a download on https stays on https`,
    );
    expect(redirector.requests).toHaveLength(2);
    expect(server.ranges).toEqual([]);
  });
});

describe('update.throttle', () => {
  it('pauses after every read: reads of the download are at least the throttle apart', async () => {
    const server = await started(startImageServer(data));
    const throttleMs = 25;
    const at: number[] = [];
    const result = await downloadImage({
      url: server.url,
      size: image.size,
      file: join(dir, 'paced.img'),
      offset: 0,
      stallTimeoutMs: 5000,
      throttleMs,
      onProgress: () => at.push(performance.now()),
    });
    expect(result.sha256).toBe(image.sha256);
    // 640 KiB in reads of at most 64 KiB: at least 10 reads, so 9 pauses.
    expect(at.length).toBeGreaterThanOrEqual(10);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Timers may fire up to a millisecond early against performance.now().
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(throttleMs - 1);
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual((at.length - 1) * (throttleMs - 1));
  });

  it('does not count its pauses as a stall: pauses longer than the stall timeout finish the download', async () => {
    const small = data.subarray(0, 130 * KiB);
    const server = await started(startImageServer(small));
    const retries: Error[] = [];
    await downloadImage({
      url: server.url,
      size: small.length,
      file: join(dir, 'paced-stall.img'),
      offset: 0,
      stallTimeoutMs: 100,
      throttleMs: 250,
      onRetry: (_attempt, err) => retries.push(err),
    });
    expect(retries).toEqual([]);
    expect(server.ranges).toEqual(['']);
  });
});
