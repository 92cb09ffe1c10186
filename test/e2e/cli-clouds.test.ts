/**
 * `--cloud NAME` and `--cloud all` against deployed clouds, as read from cdk-outputs.json. Two
 * "deployed" clouds are stood in for by two tables and two buckets in the local cloud's dynalite and
 * s3rver, reached through the SDK's endpoint variables (AWS_ENDPOINT_URL_DYNAMODB / _S3).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signS3Request, startTestCloud, type TestCloud } from '#test/support/cloud.ts';
import { createStandInClouds, type StandInClouds } from '#test/support/stand-in-clouds.ts';
import { runUpdraft } from './cli-helpers.ts';

let cloud: TestCloud;
let work: string;
let standIns: StandInClouds;
const clouds = ['east', 'west'];

beforeAll(async () => {
  cloud = await startTestCloud();
  work = mkdtempSync(join(tmpdir(), 'updraft-clouds-'));
  standIns = await createStandInClouds(cloud, work, clouds);
});

afterAll(async () => {
  await cloud?.dispose();
  rmSync(work, { recursive: true, force: true });
});

const env = () => ({ UPDRAFT_OUTPUTS: standIns.outputsFile, ...standIns.env });

describe('deployed clouds from cdk-outputs.json', () => {
  it('publishes to every cloud with --cloud all, and each lists it', async () => {
    const file = join(work, 'fw.bin');
    writeFileSync(file, 'firmware for every cloud');
    const published = await runUpdraft(
      ['publish', '--cloud', 'all', '--product', 'gw', '--version', '2.0.0', '--file', file, '--json'],
      env(),
    );
    expect(published.code, published.stderr).toBe(0);
    for (const name of clouds) {
      const listed = await runUpdraft(['list', '--cloud', name, '--product', 'gw', '--json'], env());
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('"2.0.0"');
      const url = `${cloud.s3Url}/bucket-${name}/images/gw/2.0.0/fw.bin`;
      const object = await fetch(url, {
        headers: signS3Request('GET', url, Buffer.alloc(0), cloud.file.credentials),
      });
      expect(await object.text()).toBe('firmware for every cloud');
    }
    // The local cloud is not part of "all".
    const local = await runUpdraft(['list', '--product', 'gw', '--json'], { UPDRAFT_DATA: cloud.dataDir });
    expect(local.stdout).not.toContain('"2.0.0"');
  });

  it('names the known clouds when asked for an unknown one', async () => {
    const unknown = await runUpdraft(['list', '--cloud', 'north', '--product', 'gw'], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^updraft: Unknown cloud "north": use one of local, east, west/);
  });
});
