/**
 * `npm start` and `updraft console` serve the console: each prints the URL with its secret, which
 * signs a browser in, and stops on a signal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestCloud } from '#test/support/cloud.ts';
import { rawRequest } from '#test/support/console.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'updraft-console-start-'));
const children: ChildProcess[] = [];

function start(...flags: string[]): ChildProcess {
  const args = ['--import', 'tsx', 'local/main.ts', '--data', dataDir, '--port', '0', '--s3-port', '0'];
  const child = spawn(process.execPath, [...args, ...flags, '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

/** Resolves with the first match of `pattern` in the child's stdout; fails when it exits or in 30 s. */
function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in 30 s; stdout: ${out}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ${pattern}; stdout: ${out}`));
    });
  });
}

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start and the console', () => {
  it('refuses a bad --console-port in one line', async () => {
    const child = start('--console-port', '99999');
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(err).toBe('updraft: Invalid --console-port "99999": use a port number 0–65535\n');
  });

  it('prints the console URL with its secret; the secret signs in, and SIGTERM stops both', async () => {
    const child = start('--console-port', '0');
    const [, origin, secret] = await waitForOutput(
      child,
      /\n {2}(http:\/\/127\.0\.0\.1:\d+)\/\?secret=([\w-]{43})\n/,
    );
    const host = new URL(origin!).host;
    const exchange = await rawRequest(origin!, 'GET', `/?secret=${secret}`, { host });
    expect(exchange.status).toBe(303);
    const cookie = String(exchange.headers['set-cookie']).split(';')[0]!;
    const session = await rawRequest(origin!, 'GET', '/api/session', { host, cookie });
    expect(JSON.parse(session.text)).toEqual({ clouds: ['local'], defaultProduct: 'demo' });
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    await expect(rawRequest(origin!, 'GET', '/', { host })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('updraft console', () => {
  it('serves the console for a running cloud until SIGINT', async () => {
    const cloud = await startTestCloud();
    try {
      const args = [
        'bin/updraft.js',
        'console',
        '--data',
        cloud.dataDir,
        '--port',
        '0',
        '--product',
        'fleet-a',
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const [, origin, secret] = await waitForOutput(
        child,
        /\n {2}(http:\/\/127\.0\.0\.1:\d+)\/\?secret=([\w-]{43})\n/,
      );
      const host = new URL(origin!).host;
      const exchange = await rawRequest(origin!, 'GET', `/?secret=${secret}`, { host });
      const cookie = String(exchange.headers['set-cookie']).split(';')[0]!;
      const session = await rawRequest(origin!, 'GET', '/api/session', { host, cookie });
      expect(JSON.parse(session.text)).toEqual({ clouds: ['local'], defaultProduct: 'fleet-a' });
      const tokens = await rawRequest(origin!, 'GET', '/api/clouds/local/tokens?product=demo', {
        host,
        cookie,
      });
      expect(JSON.parse(tokens.text)).toEqual([
        expect.objectContaining({ description: 'development token' }),
      ]);
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      await cloud.dispose();
    }
  });

  it('refuses a bad --port in one line', async () => {
    const child = spawn(process.execPath, ['bin/updraft.js', 'console', '--port', '70000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(err).toBe('updraft: Invalid --port 70000: use a port number 0–65535\n');
  });
});
