/** Test helpers: a real local cloud (dynalite + s3rver + app server) in a temp dir, and seeding through the adapters. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UpdateRecord } from '#core/types.ts';
import { precedenceKey } from '#core/version.ts';
import { bumpStamp } from '#functions/device-store.ts';
import { keys } from '#functions/keys.ts';
import { updateToItem } from '#functions/records.ts';
import { LOCAL_BUCKET, type LocalCloud, startLocalCloud } from '#local/cloud.ts';
import { notifyLocalChange } from '#local/cloud-file.ts';

export interface TestCloud extends LocalCloud {
  readonly dataDir: string;
  /** Stops the cloud and removes its data dir. */
  dispose(): Promise<void>;
}

const quiet = { info() {}, warn() {}, error() {} };

export async function startTestCloud(
  dataDir = mkdtempSync(join(tmpdir(), 'updraft-test-')),
): Promise<TestCloud> {
  const cloud = await startLocalCloud({ dataDir, port: 0, s3Port: 0, log: quiet });
  return {
    ...cloud,
    dataDir,
    async dispose() {
      await cloud.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** PUT an object into the local S3 (s3rver accepts unsigned requests). */
export function putObject(
  s3Url: string,
  key: string,
  body: Buffer,
  tls: { ca?: string } = {},
): Promise<void> {
  const request = s3Url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      `${s3Url}/${LOCAL_BUCKET}/${key}`,
      { method: 'PUT', headers: { 'content-length': body.length }, ...tls },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${key}: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let seq = 0;

/** Publishes an update through the adapters: image into S3, record into the table, stamp bumped. */
export async function seedUpdate(
  cloud: Pick<TestCloud, 's3Url' | 'table' | 'dataDir'>,
  fields: Partial<UpdateRecord> & { product?: string; version: string },
  image: Buffer = randomBytes(1024),
  tls: { ca?: string } = {},
): Promise<UpdateRecord> {
  const product = fields.product ?? 'demo';
  const id = fields.id ?? `u${Date.now().toString(36)}${(seq++).toString(36)}`;
  const key = `images/${product}/${fields.version}/image.bin`;
  await putObject(cloud.s3Url, key, image, tls);
  const update: UpdateRecord = {
    policy: '',
    description: '',
    enabled: true,
    paused: false,
    allowDowngrade: false,
    created: new Date().toISOString(),
    counters: { started: 0, success: 0, failure: 0, deferred: 0 },
    ...fields,
    id,
    product,
    key,
    checksum: createHash('sha256').update(image).digest('hex'),
    size: image.length,
  };
  await cloud.table.put({ ...keys.versionGuard(product, precedenceKey(update.version)), id }, true);
  await cloud.table.put(updateToItem(update));
  await bumpStamp(cloud.table, product);
  notifyLocalChange(cloud.dataDir);
  return update;
}

/** Changes stored fields of an update (as `updraft edit` does) and bumps the stamp. */
export async function editUpdate(
  cloud: Pick<TestCloud, 'table' | 'dataDir'>,
  update: UpdateRecord,
  set: Record<string, string | number | boolean | undefined>,
) {
  await cloud.table.update(keys.update(update.product, update.id), { set });
  await bumpStamp(cloud.table, update.product);
  notifyLocalChange(cloud.dataDir);
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Record<string, unknown>;
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

export function checkin(
  cloud: Pick<LocalCloud, 'apiUrl' | 'devToken'>,
  device: Record<string, unknown>,
  token = cloud.devToken,
) {
  return post(`${cloud.apiUrl}/tok/provision/update`, device, { authorization: `Bearer ${token}` });
}

export function report(
  cloud: Pick<LocalCloud, 'apiUrl' | 'devToken'>,
  body: Record<string, unknown>,
  token = cloud.devToken,
) {
  return post(`${cloud.apiUrl}/tok/provision/updateReport`, body, { authorization: `Bearer ${token}` });
}
