/**
 * `bundle-size` and `cold-import` (DESIGN §9): the checkin function bundled exactly as the stack
 * bundles it (scripts/bundling.ts) beside a naive bundle that imports the full SDK clients the obvious
 * way (client-s3 + s3-request-presigner + client-dynamodb), minified ESM for node22 with the same
 * options, built in the same run. Cold import is timed inside fresh node
 * processes started with the Lambda's NODE_OPTIONS.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { BUNDLE_FILE, LAMBDA_NODE_OPTIONS, lambdaBuildOptions } from '#scripts/bundling.ts';
import { SDK_WARNING_ENV } from '#scripts/sdk-env.ts';
import { type BenchRow, type BenchSuite, unmeasured } from './row.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHECKIN = join(ROOT, 'functions/checkin.ts');
const RUNS = 7;
const SIZE_BASELINE = 'naive SDK bundle (client-s3 + s3-request-presigner + client-dynamodb), minified ESM';
const IMPORT_BASELINE = 'cold import of the naive SDK bundle';

/** What a handler written without care for cold starts looks like: full clients built at import. */
const NAIVE_ENTRY = `
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
const s3 = new S3Client({});
const dynamo = new DynamoDBClient({});
export const handler = async (event) => {
  const body = JSON.parse(event.body ?? '{}');
  const key = { pk: { S: 'device#' + body.product }, sk: { S: String(body.id) } };
  await dynamo.send(new GetItemCommand({ TableName: process.env.TABLE_NAME, Key: key }));
  await dynamo.send(new QueryCommand({ TableName: process.env.TABLE_NAME, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': key.pk } }));
  await dynamo.send(new PutItemCommand({ TableName: process.env.TABLE_NAME, Item: key }));
  await dynamo.send(new UpdateItemCommand({ TableName: process.env.TABLE_NAME, Key: key, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } }));
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: process.env.BUCKET_NAME, Key: 'images/x' }), { expiresIn: 3600 });
  return { statusCode: 200, body: JSON.stringify({ url }) };
};
`;

/** Env of a Lambda container; the credentials are never used at import time. */
const LAMBDA_ENV = {
  PATH: process.env.PATH ?? '',
  NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
  // The SDK warns once per process on Node < 22; Lambda runs 22, so neither side should pay for the warning here.
  ...SDK_WARNING_ENV,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDBENCHMARK',
  AWS_SECRET_ACCESS_KEY: 'bench',
  TABLE_NAME: 'updraft-bench',
  BUCKET_NAME: 'updraft-bench-images',
};

const IMPORT_TIMER =
  'const t = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t));';

async function importMs(bundle: string): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', IMPORT_TIMER, pathToFileURL(bundle).href],
    { env: LAMBDA_ENV, timeout: 30_000 },
  );
  const ms = Number(stdout);
  if (!Number.isFinite(ms)) throw new Error(`importing ${bundle} printed ${JSON.stringify(stdout)}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** First esbuild error with its location, or the first line of any other error. */
function describe(error: unknown): string {
  const first = (error as { errors?: { text: string; location?: { file: string; line: number } | null }[] })
    .errors?.[0];
  if (first)
    return first.location ? `${first.location.file}:${first.location.line}: ${first.text}` : first.text;
  return String(error instanceof Error ? error.message : error).split('\n')[0]!;
}

const kib = (file: string) => statSync(file).size / 1024;

export const suite: BenchSuite = async () => {
  if (!existsSync(CHECKIN)) {
    const why = 'functions/checkin.ts does not exist yet';
    return [
      unmeasured('bundle-size', 'KiB', SIZE_BASELINE, 'lower', why),
      unmeasured('cold-import', 'ms', IMPORT_BASELINE, 'lower', why),
    ];
  }
  const dir = mkdtempSync(join(tmpdir(), 'updraft-bench-bundle-'));
  try {
    const checkin = join(dir, 'checkin', BUNDLE_FILE);
    const naive = join(dir, 'naive', BUNDLE_FILE);
    await build(lambdaBuildOptions(CHECKIN, checkin));
    const { entryPoints: _none, ...options } = lambdaBuildOptions('', naive);
    await build({
      ...options,
      stdin: { contents: NAIVE_ENTRY, resolveDir: ROOT, loader: 'js', sourcefile: 'naive.mjs' },
    });

    // Node's first dynamic import sets up the ESM loader whatever the module; that fixed cost is
    // measured on an empty module in the same processes' conditions and taken off both sides.
    const empty = join(dir, 'empty.mjs');
    writeFileSync(empty, 'export {};\n');
    const times = { empty: [] as number[], checkin: [] as number[], naive: [] as number[] };
    for (const file of [empty, checkin, naive]) await importMs(file); // warms the file cache alike
    for (let i = 0; i < RUNS; i++) {
      times.empty.push(await importMs(empty));
      times.checkin.push(await importMs(checkin));
      times.naive.push(await importMs(naive));
    }
    const loader = median(times.empty);
    const size = kib(checkin);
    const rows: BenchRow[] = [
      {
        name: 'bundle-size',
        value: size,
        unit: 'KiB',
        baseline: SIZE_BASELINE,
        baselineValue: kib(naive),
        better: 'lower',
        detail: `target ≤ 300 KiB; source map ${Math.round(kib(`${checkin}.map`))} KiB beside it`,
      },
      {
        name: 'cold-import',
        value: median(times.checkin) - loader,
        unit: 'ms',
        baseline: IMPORT_BASELINE,
        baselineValue: median(times.naive) - loader,
        better: 'lower',
        detail:
          `median of ${RUNS} fresh node processes with NODE_OPTIONS=${LAMBDA_NODE_OPTIONS}, net of ` +
          `${loader.toFixed(1)} ms to import an empty module; target ≤ 0.5x the naive bundle`,
      },
    ];
    return rows;
  } catch (error) {
    const why = `bundling or importing failed: ${describe(error)}`;
    return [
      unmeasured('bundle-size', 'KiB', SIZE_BASELINE, 'lower', why),
      unmeasured('cold-import', 'ms', IMPORT_BASELINE, 'lower', why),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
