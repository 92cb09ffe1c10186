/**
 * The local server as curl-like clients see it: raw HTTP/1.1 over a socket. Every bad input is a
 * 4xx with one clear line; nothing is chunked; JSON is compact with a Content-Length.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloud } from '#functions/cloud.ts';
import { seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

let cloud: TestCloud;
let host: string;
let port: number;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes as they are and reads one response (until Content-Length bytes arrived or the server closed). */
function raw(request: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    socket.on('data', (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end));
      if (length && text.length >= end + 4 + Number(length[1])) socket.end();
    });
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const at = l.indexOf(':');
        headers[l.slice(0, at).toLowerCase()] = l.slice(at + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    socket.on('error', reject);
    // Keep our side open until the answer is read: a half-close may end the exchange early.
    socket.write(request);
  });
}

function postRaw(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: ${host}:${port}`,
    'Connection: close',
    `Content-Length: ${bytes.length}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n');
  return raw(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), bytes]));
}

const CHECKIN = '/tok/provision/update';
const REPORT = '/tok/provision/updateReport';

beforeAll(async () => {
  cloud = await startTestCloud();
  const url = new URL(cloud.apiUrl);
  host = url.hostname;
  port = Number(url.port);
  await seedUpdate(cloud, { version: '1.1.0' });
});

afterAll(async () => {
  await cloud?.dispose();
});

describe('wire format', () => {
  it.each([
    ['raw Authorization', (t: string) => ({ Authorization: t })],
    ['Bearer', (t: string) => ({ Authorization: `Bearer ${t}` })],
    ['X-Token', (t: string) => ({ 'X-Token': t })],
  ])('answers compact JSON with Content-Length, never chunked (%s)', async (_, auth) => {
    const answer = await postRaw(
      CHECKIN,
      '{"id":"d1","product":"demo","version":"1.0.0"}',
      auth(cloud.devToken),
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['transfer-encoding']).toBeUndefined();
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    expect(answer.body).toMatch(
      /^\{"url":"[^"]+","checksum":"[0-9a-f]{64}","update":"[^"]+","version":"1\.1\.0","size":1024\}$/,
    );
  });

  it('accepts the content types existing clients send', async () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'application/x-www-form-urlencoded',
    ]) {
      const answer = await postRaw(CHECKIN, '{"id":"d1","product":"demo","version":"1.1.0"}', {
        Authorization: cloud.devToken,
        'Content-Type': type,
      });
      expect(answer.status, type).toBe(200);
      expect(answer.body).toBe('{}');
    }
  });
});

describe('bad input is a 4xx with one clear line, never a 5xx', () => {
  const cases: [string, string | Buffer, number, RegExp][] = [
    ['malformed JSON', '{"id":', 400, /JSON/i],
    ['not an object', '[1,2]', 400, /object/i],
    ['missing id', '{"product":"demo","version":"1.0.0"}', 400, /"id"/],
    ['wrong id type', '{"id":5,"product":"demo","version":"1.0.0"}', 400, /"id"/],
    [
      'bad SemVer',
      '{"id":"d1","product":"demo","version":"1.2"}',
      400,
      /Invalid version "1\.2": not SemVer 2\.0/,
    ],
    ['prototype key', '{"id":"d1","product":"demo","version":"1.0.0","__proto__":{"x":1}}', 400, /__proto__/],
    [
      'constructor key',
      '{"id":"d1","product":"demo","version":"1.0.0","a":{"constructor":1}}',
      400,
      /constructor/,
    ],
    [
      'deep nesting',
      '{"id":"d1","product":"demo","version":"1.0.0","a":{"b":{"c":{"d":{"e":{}}}}}}',
      400,
      /deep|depth|nest/i,
    ],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, /UTF-8/i],
    ['empty body', '', 400, /./],
    [
      '16 KiB+ body',
      `{"id":"d1","product":"demo","version":"1.0.0","x":"${'a'.repeat(17 * 1024)}"}`,
      413,
      /16384|bytes/,
    ],
  ];
  it.each(cases)('%s', async (_, body, status, message) => {
    const answer = await postRaw(CHECKIN, body, { Authorization: cloud.devToken });
    expect(answer.status).toBe(status);
    expect(answer.body).toMatch(message);
    expect(answer.body.trim().split('\n')).toHaveLength(1);
  });

  it('bad reports', async () => {
    const bad = await postRaw(REPORT, '{"id":"d1","update":"x","success":"maybe"}', {
      Authorization: cloud.devToken,
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/success/);
  });

  it('wrong method, path and content type', async () => {
    const get = await raw(`GET ${CHECKIN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await postRaw('/nope', '{}')).status).toBe(404);
    const xml = await postRaw(CHECKIN, '<a/>', {
      Authorization: cloud.devToken,
      'Content-Type': 'application/xml',
    });
    expect(xml.status).toBe(415);
  });
});

describe('store outage', () => {
  it('answers 503 with Retry-After and a generic line when DynamoDB is unreachable', async () => {
    const logged: unknown[] = [];
    const broken = createCloud(
      {
        tableName: 'updraft',
        bucketName: 'updraft-images',
        region: 'us-east-1',
        dynamoEndpoint: 'http://127.0.0.1:9',
        s3Endpoint: cloud.s3Url,
        urlExpiresSeconds: 3600,
        updatesCacheSeconds: 0,
      },
      {
        metrics: () => ({ count() {}, async flush() {} }),
        log: { info() {}, warn() {}, error: (...args: unknown[]) => logged.push(args) },
        credentials: () => ({ accessKeyId: 'a', secretAccessKey: 'b' }),
        tableCredentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      },
    );
    const answer = await broken.app({
      method: 'POST',
      path: CHECKIN,
      headers: { authorization: 'x' },
      body: Buffer.from('{"id":"d1","product":"demo","version":"1.0.0"}'),
    });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    expect(answer.body).toBe('Service unavailable, retry later\n');
    expect(logged).toHaveLength(1);
  });
});
