/**
 * `updraft console --cloud all --open` through the real CLI process: the local cloud and two
 * stand-in deployed clouds (own tables and buckets in the test cloud's dynalite and s3rver, as in
 * cli-clouds.test.ts) served by one console, each under /api/clouds/:cloud; `--open` hands the URL
 * to the desktop's opener, here an `xdg-open` script on PATH that records what it was given.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { rawRequest } from '#test/support/console.ts';
import { createStandInClouds, type StandInClouds } from '#test/support/stand-in-clouds.ts';
import { runUpdraft } from './cli-helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/updraft.js');
let cloud: TestCloud;
let work: string;
let deployed: StandInClouds;
const children: ChildProcess[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-console-clouds-'));
  deployed = await createStandInClouds(cloud, work, ['east', 'west']);
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
  await cloud?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** Starts `updraft console` with `path` as PATH; resolves once it printed "Press Ctrl-C". */
async function startConsoleCli(args: readonly string[], path: string) {
  const env = { ...process.env, ...deployed.env, UPDRAFT_OUTPUTS: deployed.outputsFile, PATH: path };
  const child = spawn(process.execPath, [BIN, 'console', '--data', cloud.dataDir, '--port', '0', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Press Ctrl-C" in 30 s; stdout: ${out}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}; stdout: ${out}; stderr: ${err}`));
    });
  });
  const url = /\n {2}(http:\/\/127\.0\.0\.1:\d+\/\?secret=[\w-]{43})\n/.exec(out)?.[1] ?? '';
  return { child, out, url };
}

/** Waits for a file to appear (the opener runs detached), failing with a message after 10 s. */
async function waitForFile(file: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(file) || readFileSync(file, 'utf8') === '') {
    if (Date.now() > deadline) throw new Error(`${file} was not written in 10 s: the opener did not run`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(file, 'utf8');
}

describe('updraft console --cloud all', () => {
  it('serves the local and every deployed cloud, each under its name, and opens the browser', async () => {
    const bin = join(work, 'bin');
    mkdirSync(bin);
    const opened = join(work, 'opened.txt');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${opened}'\n`);
    chmodSync(join(bin, 'xdg-open'), 0o755);
    const { child, out, url } = await startConsoleCli(['--cloud', 'all', '--open'], bin);
    expect(out).toContain('Web console for clouds local, east, west');
    expect(url).not.toBe('');
    expect(await waitForFile(opened)).toBe(url);

    const { origin, host } = new URL(url);
    const exchange = await rawRequest(origin, 'GET', `/${new URL(url).search}`, { host });
    const cookie = String(exchange.headers['set-cookie']).split(';')[0]!;
    const get = async (path: string) => rawRequest(origin, 'GET', path, { host, cookie });
    expect(JSON.parse((await get('/api/session')).text).clouds).toEqual(['local', 'east', 'west']);
    // The local cloud has its development token; the deployed stand-ins have none.
    expect(JSON.parse((await get('/api/clouds/local/tokens?product=demo')).text)).toHaveLength(1);
    expect(JSON.parse((await get('/api/clouds/west/tokens?product=demo')).text)).toEqual([]);
    const unknown = await get('/api/clouds/mars/tokens?product=demo');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text).error).toBe(
      'Unknown cloud "mars": this console serves local, east, west',
    );
    child.kill('SIGINT');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('says in one line when no browser can be opened, and serves all the same', async () => {
    const empty = join(work, 'empty-bin');
    mkdirSync(empty);
    const { child, out, url } = await startConsoleCli(['--cloud', 'east', '--open'], empty);
    expect(out).toContain('Web console for cloud east');
    expect(out).toMatch(
      /\nCannot open a browser \(xdg-open: spawn xdg-open ENOENT\): open the URL above yourself\n/,
    );
    const { origin, host } = new URL(url);
    expect((await rawRequest(origin, 'GET', '/api/session', { host })).status).toBe(401);
    child.kill('SIGINT');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('refuses --cloud all in one line when there is no cloud at all (a stale local cloud file counts for none)', async () => {
    const stale = join(work, 'stale-data');
    mkdirSync(stale);
    writeFileSync(join(stale, 'cloud.json'), JSON.stringify({ pid: 2_147_483_647 }));
    const result = await runUpdraft([
      'console',
      '--cloud',
      'all',
      '--data',
      stale,
      '--outputs',
      join(work, 'none.json'),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `updraft: No clouds to serve: start the local cloud with npm start, or deploy one (${join(work, 'none.json')} not found)\n`,
    );
  });
});
