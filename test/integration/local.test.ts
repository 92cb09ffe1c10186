/**
 * The local cloud as a process and as a service: HTTPS with a given certificate on two addresses,
 * restart keeping state, clean shutdown on signals, and one instance per data dir.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readUpdate } from '#functions/update-counters.ts';
import { startLocalCloud } from '#local/cloud.ts';
import { makeCertificate } from '#test/integration/agent-fixtures.ts';
import { checkin, report, seedUpdate, startTestCloud } from '#test/support/cloud.ts';
import { spawnLocalCloud } from '#test/support/local-process.ts';
import { until } from '#test/support/wait.ts';

const quiet = { info() {}, warn() {}, error() {} };
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'updraft-local-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function httpsPost(
  url: string,
  body: string,
  options: { authorization: string; ca?: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { authorization: options.authorization },
        ...(options.ca ? { ca: options.ca } : {}),
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTPS', () => {
  it('serves the API and images over TLS on separate addresses with the given certificate', async () => {
    const dir = tempDir();
    const tls = makeCertificate(dir, ['127.0.0.1', '127.0.0.2']);
    const pem = { cert: tls.cert, key: tls.key, certFile: tls.certFile };
    const cloud = await startLocalCloud({
      dataDir: join(dir, 'data'),
      port: 0,
      s3Port: 0,
      s3Host: '127.0.0.2',
      tls: pem,
      log: quiet,
    });
    try {
      expect(cloud.apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(cloud.s3Url).toMatch(/^https:\/\/127\.0\.0\.2:\d+$/);
      const image = Buffer.from('tls image');
      await seedUpdate({ ...cloud, dataDir: join(dir, 'data') }, { version: '1.1.0' }, image, {
        ca: pem.cert,
      });
      const answer = JSON.parse(
        await httpsPost(
          `${cloud.apiUrl}/tok/provision/update`,
          '{"id":"d1","product":"demo","version":"1.0.0"}',
          {
            authorization: cloud.devToken,
            ca: pem.cert,
          },
        ),
      ) as { url: string; checksum: string };
      expect(answer.url).toMatch(/^https:\/\/127\.0\.0\.2:\d+\//);
      const bytes = await new Promise<Buffer>((resolve, reject) => {
        get(answer.url, { ca: pem.cert }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve(Buffer.concat(chunks)));
        }).on('error', reject);
      });
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(answer.checksum);
      // Without trusting the certificate, clients refuse it: the certificate really is the one given.
      await expect(
        httpsPost(`${cloud.apiUrl}/tok/provision/update`, '{}', { authorization: 'x' }),
      ).rejects.toThrow(/self.signed|certificate/i);
    } finally {
      await cloud.stop();
    }
  });
});

describe('state', () => {
  it('keeps updates, tokens and counters across a restart', async () => {
    const cloud = await startTestCloud();
    const update = await seedUpdate(cloud, { version: '1.1.0' });
    await checkin(cloud, { id: 'd1', product: 'demo', version: '1.0.0' });
    await report(cloud, { id: 'd1', update: update.id, success: true });
    const token = cloud.devToken;
    await cloud.stop();

    const again = await startLocalCloud({ dataDir: cloud.dataDir, port: 0, s3Port: 0, log: quiet });
    try {
      expect(again.devToken).toBe(token);
      const answer = await checkin(again, { id: 'd2', product: 'demo', version: '1.0.0' });
      expect(answer.json.update).toBe(update.id);
      const stored = await readUpdate(again.table, 'demo', update.id);
      expect(stored?.counters).toMatchObject({ started: 2, success: 1 });
    } finally {
      await again.stop();
      rmSync(cloud.dataDir, { recursive: true, force: true });
    }
  });
});

describe('npm start process', () => {
  const start = (dataDir: string) => spawnLocalCloud(dataDir, ['ignore', 'pipe', 'pipe']);

  /** Waits until the local cloud wrote `path`; fails with a message if it exits or takes over 15 s. */
  function waitFor(path: string, child: ChildProcess): Promise<void> {
    return until(
      () => {
        if (child.exitCode !== null)
          throw new Error(`local cloud exited ${child.exitCode} before writing ${path}`);
        return existsSync(path);
      },
      15_000,
      `the local cloud to write ${path}`,
    );
  }

  it('refuses a second instance on the same data dir with a clear line, and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const first = start(dataDir);
    let out = '';
    first.stdout!.on('data', (c: Buffer) => (out += c));
    await waitFor(join(dataDir, 'cloud.json'), first);
    const { apiUrl } = JSON.parse(readFileSync(join(dataDir, 'cloud.json'), 'utf8')) as { apiUrl: string };
    const devToken = readFileSync(join(dataDir, 'dev-token'), 'utf8').trim();
    // cloud.json is written before the banner reaches the pipe: wait for the token line itself.
    await until(() => out.includes(devToken), 10_000, 'the dev token in the banner');
    expect((await checkin({ apiUrl, devToken }, { id: 'd', product: 'demo', version: '1.0.0' })).text).toBe(
      '{}',
    );

    const second = start(dataDir);
    let err = '';
    second.stderr!.on('data', (c: Buffer) => (err += c));
    const [code] = await once(second, 'exit');
    expect(code).toBe(1);
    expect(err.trim()).toMatch(
      /^updraft: Another local cloud \(pid \d+\) is using .*: stop it first or pass --data DIR$/m,
    );

    first.kill('SIGTERM');
    const [firstCode] = await once(first, 'exit');
    expect(firstCode).toBe(0);
    expect(existsSync(join(dataDir, 'lock'))).toBe(false);
    expect(existsSync(join(dataDir, 'cloud.json'))).toBe(false);
  });
});
