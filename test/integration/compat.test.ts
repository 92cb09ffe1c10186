/**
 * The existing EmbedThis clients against the local cloud, unchanged (DESIGN §2). Each client's requests
 * are replayed exactly as it builds them (raw socket for the C updater and the Ioto agent, Node's fetch
 * for updater.js, the shell updater's own curl command lines), and each answer is checked against that
 * client's parser: what it reads, how it finds it, and the checksum it computes over the bytes it downloads.
 *
 * Sources (facts, not code):
 * - C updater: embedthis/updater src/updater.c (= dist/updaterLib.c, release 1.2), src/main.c; the 1.1
 *   body format from the older src/updater.c.
 * - updater.js: embedthis/updater src/updater.js.  Shell: embedthis/updater src/updater.sh, and the
 *   older root updater.sh.
 * - Ioto agent: embedthis/ioto lib/iotoLib.c (section src/cloud/update.c), lib/urlLib.c, include/json.h.
 *
 * Every stock client refuses a download URL that is not https, and the C updater only connects to port 443;
 * the local cloud serves http on other ports, so that one check is left to the AWS deployment.
 */
import { execFile } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpdateRecord } from '#core/types.ts';
import { createToken } from '#functions/tokens.ts';
import { readUpdate } from '#functions/update-counters.ts';
import { seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

const run = promisify(execFile);

let cloud: TestCloud;
let api: URL;

/** Custom properties the update's policy needs; clients send them as strings, Ioto in their JSON types. */
const POLICY = 'beta == true && rev >= 2';
const IMAGE = Buffer.from(`${'\u0000\u00ff'.repeat(3000)} an image with binary bytes`, 'latin1');

interface Product {
  readonly name: string;
  readonly token: string;
  readonly update: UpdateRecord;
}

beforeAll(async () => {
  cloud = await startTestCloud();
  api = new URL(cloud.apiUrl);
});

afterAll(async () => {
  await cloud?.dispose();
});

async function product(name: string): Promise<Product> {
  const { token } = await createToken(cloud.table, { product: name });
  const update = await seedUpdate(cloud, { product: name, version: '1.1.0', policy: POLICY }, IMAGE);
  return { name, token, update };
}

async function counters(p: Product) {
  await cloud.flush();
  return (await readUpdate(cloud.table, p.name, p.update.id))!.counters;
}

interface Exchange {
  /** The first chunk read: the C updater parses status and headers from one read of ≤ 4095 bytes. */
  readonly first: string;
  readonly statusLine: string;
  /** Header block as sent (case preserved), without the blank line. */
  readonly head: string;
  readonly body: Buffer;
}

/** Writes the request bytes and reads one response: up to its Content-Length, or until the server closes. */
function exchange(target: URL, request: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    const finish = () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, end < 0 ? all.length : end).toString('latin1');
      resolve({
        first: chunks[0]?.toString('latin1') ?? '',
        statusLine: head.split('\r\n')[0] ?? '',
        head,
        body: end < 0 ? Buffer.alloc(0) : all.subarray(end + 4),
      });
    };
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, end).toString('latin1'));
      if (length && all.length >= end + 4 + Number(length[1])) {
        socket.destroy();
        finish();
      }
    });
    socket.on('close', finish);
    socket.on('error', reject);
    socket.write(request, 'latin1');
  });
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ---------------------------------------------------------------------------------------------------------
// C updater (src/updater.c, src/main.c)

/**
 * The request as the C updater's fetch() formats it: request line, `Host` without a port (it always
 * connects to 443), `Content-Length` (strlen of the body), the caller's headers, a blank line, the body.
 * No `Connection` header.
 */
function cRequest(method: string, url: URL, headers: string, body?: string): string {
  const path = `${url.pathname.slice(1)}${url.search}`;
  const length = body === undefined ? 0 : Buffer.byteLength(body);
  return `${method} /${path} HTTP/1.1\r\nHost: ${url.hostname}\r\nContent-Length: ${length}\r\n${headers}\r\n${body ?? ''}`;
}

function cApiHeaders(token: string): string {
  return `Content-Type: application/json\r\nAuthorization: ${token}\r\n`;
}

/** main.c turns each `key=value` argument into `"key":"value"`: every custom value is a string. */
function cProperties(props: Record<string, string>): string {
  return Object.entries(props)
    .map(([k, v]) => `"${k}":"${v}"`)
    .join(',');
}

/** Release 1.2 body: the properties follow a comma only when there are some. */
function cCheckinBody(id: string, productName: string, version: string, props?: Record<string, string>) {
  const extra = props ? `,${cProperties(props)}` : '';
  return `{"id":"${id}","product":"${productName}","version":"${version}"${extra}}`;
}

/**
 * What the C updater's hand-written scanner yields for `key`: it finds the first `"key":` (no space
 * allowed), then takes up to the next `"` if the value is quoted (no escape handling), else up to the next
 * `,` or `}`. Written from its documented behaviour to check our answers against it.
 */
function cScan(text: string, key: string): string | undefined {
  const at = text.indexOf(`"${key}":`);
  if (at < 0) return undefined;
  let start = at + key.length + 3;
  const quoted = text[start] === '"';
  if (quoted) start++;
  let end = start;
  while (end < text.length && (quoted ? text[end] !== '"' : text[end] !== ',' && text[end] !== '}')) end++;
  return text.slice(start, end);
}

/** The C updater accepts only `HTTP/1.1 200` and finds the body length with a case-sensitive search. */
function expectCParsable(answer: Exchange): void {
  expect(answer.first.startsWith('HTTP/1.1 200 ')).toBe(true);
  expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
  // Status and headers must all arrive in its first read.
  expect(answer.first.indexOf('\r\n\r\n')).toBeGreaterThan(0);
  expect(answer.first.indexOf('\r\n\r\n')).toBeLessThan(4095);
  expect(answer.head).not.toMatch(/\r\ntransfer-encoding:/i);
  const length = /\r\nContent-Length:\s*(\d+)\r?$/m.exec(answer.head);
  expect(length, `"Content-Length:" (exact case) in\n${answer.head}`).not.toBeNull();
  expect(Number(length?.[1])).toBe(answer.body.length);
}

describe('C updater (release 1.2)', () => {
  let p: Product;
  beforeAll(async () => {
    p = await product('c-updater');
  });

  const checkinUrl = () => new URL('/tok/provision/update', api);
  const reportUrl = () => new URL('/tok/provision/updateReport', api);

  it('checks in with string properties, downloads, verifies the checksum and reports', async () => {
    const body = cCheckinBody('c-dev', p.name, '1.0.0', { beta: 'true', rev: '3' });
    const answer = await exchange(api, cRequest('POST', checkinUrl(), cApiHeaders(p.token), body));
    expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
    const text = answer.body.toString('utf8');
    expect(text).not.toMatch(/\s/); // compact: `"key":value`, no space anywhere
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const url = cScan(text, 'url');
    const checksum = cScan(text, 'checksum');
    const update = cScan(text, 'update');
    expect(url).toBe(parsed.url); // nothing escaped inside the URL (no `\/`, no `\u0026`)
    expect(checksum).toBe(p.update.checksum);
    expect(checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(update).toBe(p.update.id);
    expect(cScan(text, 'version')).toBe('1.1.0');
    expect(cScan(text, 'size')).toBe(String(IMAGE.length));
    // The scanner takes the first match: each key once, and nothing key-like inside the URL.
    for (const key of ['url', 'checksum', 'update', 'version'])
      expect(text.split(`"${key}":`)).toHaveLength(2);
    expect(url).not.toMatch(/checksum|"/);

    const image = new URL(url!);
    const download = await exchange(image, cRequest('GET', image, 'Accept: */*\r\n'));
    expect(download.statusLine).toMatch(/^HTTP\/1\.1 200 /);
    expect(download.head).toMatch(/\r\nContent-Length: \d+/);
    expect(sha256(download.body)).toBe(checksum);

    const ok = `{"success":true,"id":"c-dev","update":"${update}"}`;
    const okAnswer = await exchange(api, cRequest('POST', reportUrl(), cApiHeaders(p.token), ok));
    expect(okAnswer.statusLine).toBe('HTTP/1.1 200 OK');
    expect(okAnswer.body.toString()).toBe('{}');
    // A second device is offered the update too, and reports a failure.
    const second = cCheckinBody('c-dev-2', p.name, '1.0.0', { beta: 'true', rev: '3' });
    await exchange(api, cRequest('POST', checkinUrl(), cApiHeaders(p.token), second));
    const failed = `{"success":false,"id":"c-dev-2","update":"${update}"}`;
    expect(
      (await exchange(api, cRequest('POST', reportUrl(), cApiHeaders(p.token), failed))).statusLine,
    ).toBe('HTTP/1.1 200 OK');
    expect(await counters(p)).toMatchObject({ started: 2, success: 1, failure: 1 });
  });

  it('reads "no update" from {} (no "url" key)', async () => {
    const body = cCheckinBody('c-dev-old', p.name, '1.0.0', { beta: 'false', rev: '3' });
    const answer = await exchange(api, cRequest('POST', checkinUrl(), cApiHeaders(p.token), body));
    expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
    expect(answer.body.toString()).toBe('{}');
    expect(cScan(answer.body.toString(), 'url')).toBeUndefined();
  });

  it('gets answers its HTTP reader accepts: headers in the first read, exact-case Content-Length', async () => {
    const offer = cCheckinBody('c-dev-3', p.name, '1.0.0', { beta: 'true', rev: '3' });
    const none = cCheckinBody('c-dev-4', p.name, '1.0.0');
    const report = `{"success":true,"id":"c-dev-3","update":"${p.update.id}"}`;
    for (const [url, body] of [
      [checkinUrl(), offer],
      [checkinUrl(), none],
      [reportUrl(), report],
    ] as const) {
      expectCParsable(await exchange(api, cRequest('POST', url, cApiHeaders(p.token), body)));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// updater.js (src/updater.js): Node's own fetch, as the client uses it

describe('updater.js', () => {
  it('checks in, downloads, verifies the checksum and reports', async () => {
    const p = await product('js-updater');
    const device = 'js-dev';
    // parseArgs splits `key=value` arguments: values are strings.
    const body = Object.assign({ id: device, product: p.name, version: '1.0.0' }, { beta: 'true', rev: '3' });
    const response = await fetch(`${cloud.apiUrl}/tok/provision/update`, {
      method: 'POST',
      headers: { Authorization: p.token, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    const data = JSON.parse(await response.text()) as Record<string, string>;
    expect(data).toMatchObject({
      url: expect.stringMatching(/^http:\/\//),
      checksum: p.update.checksum,
      update: p.update.id,
      version: '1.1.0',
    });

    const res = await fetch(data.url!);
    expect(res.status).toBe(200);
    // updater.js refuses an image above 100 MiB by its Content-Length: it must be the image's length.
    expect(Number.parseInt(res.headers.get('content-length') ?? '', 10)).toBe(IMAGE.length);
    const sum = sha256(Buffer.from(await res.arrayBuffer()));
    expect(sum).toBe(p.update.checksum);
    expect(sum.length).toBe(data.checksum!.length);
    expect(timingSafeEqual(Buffer.from(sum), Buffer.from(data.checksum!))).toBe(true);

    const report = await fetch(`${cloud.apiUrl}/tok/provision/updateReport`, {
      method: 'POST',
      headers: { Authorization: p.token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ success: true, id: device, update: data.update }),
    });
    expect(report.status).toBe(200);
    expect(await report.text()).toBe('{}');
    expect(await counters(p)).toMatchObject({ started: 1, success: 1, failure: 0 });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Shell updater (src/updater.sh): its curl command lines, run as they are

/** Writes a heredoc body as the script does; curl's `-d @file` then drops its newlines. */
function heredoc(name: string, text: string): string {
  const file = join(cloud.dataDir, name);
  writeFileSync(file, text);
  return file;
}

/** The newest script's heredoc: one `"key":value` per line, indented four spaces. */
function shellBody(name: string, lines: string[]): string {
  return heredoc(name, `{\n${lines.map((l) => `    ${l}`).join(',\n')}\n}\n`);
}

/** The script's POST: `curl -f -s --max-time 30 -X POST -H "Authorization:$TOKEN" …` (older: no -f/--max-time). */
function curlPost(path: string, token: string, file: string, strict = true) {
  return run('curl', [
    ...(strict ? ['-f', '-s', '--max-time', '30'] : ['-s']),
    '-X',
    'POST',
    '-H',
    `Authorization:${token}`,
    '-H',
    'Content-Type:application/json',
    '-d',
    `@${file}`,
    `${cloud.apiUrl}${path}`,
  ]);
}

describe('updater.sh', () => {
  it('checks in with key=value properties, downloads, verifies with openssl dgst and reports', async () => {
    const p = await product('sh-updater');
    const props = '"beta":"true","rev":"3"'; // PROPERTIES as parse_args joins them
    const data = shellBody('sh-checkin.json', [
      '"id":"sh-dev"',
      `"product":"${p.name}"`,
      '"version":"1.0.0"',
      props,
    ]);
    const { stdout } = await curlPost('/tok/provision/update', p.token, data);
    // `[ \`cat "$OUTPUT"\` = "{}" ]` word-splits the answer: it must hold no whitespace.
    expect(stdout).not.toMatch(/\s/);
    const answer = JSON.parse(stdout) as Record<string, unknown>; // jq .url / .checksum / .update / .version
    expect(answer).toMatchObject({
      url: expect.stringMatching(/^http:\/\//),
      checksum: p.update.checksum,
      update: p.update.id,
      version: '1.1.0',
    });

    const image = await run(
      'curl',
      ['-f', '-s', '--max-filesize', '104857600', '--max-time', '600', String(answer.url)],
      {
        encoding: 'buffer',
      },
    );
    const file = join(cloud.dataDir, 'sh-update.bin');
    writeFileSync(file, image.stdout);
    const dgst = await run('openssl', ['dgst', '-sha256', file]);
    expect(dgst.stdout.trim().split(/\s+/)[1]).toBe(answer.checksum); // awk '{print $2}'

    const report = shellBody('sh-report.json', [
      '"success":"true"',
      '"id":"sh-dev"',
      `"update":"${answer.update}"`,
    ]);
    // -f: rejects on a non-2xx
    expect((await curlPost('/tok/provision/updateReport', p.token, report)).stdout).toBe('{}');
    expect(await counters(p)).toMatchObject({ started: 1, success: 1 });
  });

  it('answers exactly {} when there is nothing to do', async () => {
    const p = await product('sh-updater-idle');
    const data = shellBody('sh-idle.json', ['"id":"sh-idle"', `"product":"${p.name}"`, '"version":"1.0.0"']);
    expect((await curlPost('/tok/provision/update', p.token, data)).stdout).toBe('{}');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Ioto agent (src/cloud/update.c over lib/urlLib.c)

describe('Ioto agent', () => {
  it('checks in with its device.json5, downloads and verifies the checksum', async () => {
    const p = await product('01J1SAXX9YCW40KGBJ0E612H0M');
    // jsonBlend of config "device", then version and iotoVersion, rendered with JSON_JSON: compact,
    // double-quoted keys, values in their JSON types.
    const body = JSON.stringify({
      id: 'TEST000001',
      product: p.name,
      name: 'Unit Test Router',
      description: 'Unit Test Router',
      model: 'Unit-Router',
      test: false,
      beta: true,
      rev: 3,
      account: '01JKW3C2XV04ABPKGHBQ1Y5838',
      cloud: '01J1SB7VSBFA3GR1EMX4MGQRAD',
      version: '1.0.0',
      iotoVersion: '2.8.1',
    });
    // urlLib: request line, the caller's headers after a prepended Content-Length, then Host with the
    // port when it is not 80/443; the token scheme is lower-case `bearer`.
    const answer = await exchange(
      api,
      `POST /tok/provision/update HTTP/1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Authorization: bearer ${p.token}\r\nContent-Type: application/json\r\nHost: ${api.host}\r\n\r\n${body}`,
    );
    expect(answer.statusLine).toMatch(/^HTTP\/1\.1 200 /);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(answer.head);
    expect(Number(length?.[1])).toBe(answer.body.length);
    const json = JSON.parse(answer.body.toString('utf8')) as Record<string, string>;
    expect(json).toMatchObject({ update: p.update.id, version: '1.1.0', checksum: p.update.checksum });

    const image = new URL(json.url!);
    const download = await exchange(
      image,
      `GET ${image.pathname}${image.search} HTTP/1.1\r\nHost: ${image.host}\r\n\r\n`,
    );
    expect(download.statusLine).toMatch(/^HTTP\/1\.1 200 /);
    expect(sha256(download.body)).toBe(json.checksum); // cryptGetFileSha256: lowercase hex, exact match
    expect(await counters(p)).toMatchObject({ started: 1 });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Older releases still in the field write a trailing comma before `}`.

describe('older releases (trailing commas)', () => {
  let p: Product;
  beforeAll(async () => {
    p = await product('legacy');
  });

  it('C updater 1.1 without properties: {"id":…,"version":"…",}', async () => {
    // 1.1 formats `…"version":"%s",%s}` with an empty string when no key=value was given.
    const body = `{"id":"c11-dev","product":"${p.name}","version":"1.0.0",}`;
    const answer = await exchange(
      api,
      cRequest('POST', new URL('/tok/provision/update', api), cApiHeaders(p.token), body),
    );
    expect(answer.statusLine, answer.body.toString()).toBe('HTTP/1.1 200 OK');
    expect(answer.body.toString()).toBe('{}');
  });

  it('first updater.sh: checkin and report bodies end with ",}"', async () => {
    // Its heredocs put a comma after the last property and send success as a JSON boolean.
    const data = heredoc(
      'sh-old-checkin.json',
      `{\n    "id":"sh-old",\n    "product":"${p.name}",\n    "version":"1.0.0",\n    "beta":"true",\n    "rev":"3",\n}\n`,
    );
    // No -f: a 400 line would reach `jq -r .url`, fail, and read as "No update required".
    const offer = JSON.parse((await curlPost('/tok/provision/update', p.token, data, false)).stdout) as {
      update?: string;
    };
    expect(offer.update).toBe(p.update.id);
    const report = heredoc(
      'sh-old-report.json',
      `{\n    "success":true,\n    "id":"sh-old",\n    "update":"${p.update.id}",\n}\n`,
    );
    expect((await curlPost('/tok/provision/updateReport', p.token, report, false)).stdout).toBe('{}');
    expect(await counters(p)).toMatchObject({ success: 1 });
  });
});
