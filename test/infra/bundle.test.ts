/**
 * The deployment artifact itself. `npx cdk synth` runs as a user would run it on a fresh clone
 * (no AWS credentials, no Docker) and bundles the functions; the bundles it staged are then invoked
 * Lambda-style, in a plain node process with an API Gateway v2 event and exactly the environment the
 * template gives each function, against dynalite + s3rver reached through AWS_ENDPOINT_URL_DYNAMODB /
 * AWS_ENDPOINT_URL_S3.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUNDLE_FILE,
  ESM_REQUIRE_BANNER,
  LAMBDA_NODE_OPTIONS,
  lambdaBuildOptions,
  PROJECT_ROOT,
} from '#scripts/bundling.ts';
import { apiGatewayPost } from '#test/support/api-gateway.ts';
import { seedUpdate, startTestCloud, type TestCloud } from '#test/support/cloud.ts';

const run = promisify(execFile);

interface Resource {
  readonly Type: string;
  readonly Metadata?: Record<string, string>;
  readonly Properties?: { Environment?: { Variables?: Record<string, string | { Ref: string }> } };
}

/** A function of the synthesized template: its staged bundle and its environment as CloudFormation would set it. */
interface SynthesizedFunction {
  readonly bundle: string;
  readonly environment: Record<string, string | { Ref: string }>;
}

let scratch: string;
let assembly: string;
let resources: Record<string, Resource>;

function functionOf(logicalIdPrefix: string): SynthesizedFunction {
  const found = Object.entries(resources).find(
    ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(logicalIdPrefix),
  );
  const asset = found?.[1].Metadata?.['aws:asset:path'];
  if (!found || !asset)
    throw new Error(`no bundled asset for ${logicalIdPrefix} in the synthesized template`);
  return {
    bundle: join(assembly, asset, BUNDLE_FILE),
    environment: found[1].Properties?.Environment?.Variables ?? {},
  };
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'updraft-synth-'));
  assembly = join(scratch, 'cdk.out');
  // Only what a fresh clone has: no AWS_* variables, a HOME without ~/.aws, and no Docker involved.
  // The EC2 metadata probe stays off: it would only look for credentials at a link-local address.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && k !== 'CDK_VALIDATION'),
  );
  await run('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--ec2creds=false', '--output', assembly], {
    cwd: PROJECT_ROOT,
    env: { ...env, HOME: scratch, CDK_DISABLE_CLI_TELEMETRY: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
    timeout: 170_000,
  });
  const manifest = JSON.parse(readFileSync(join(assembly, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string } }>;
  };
  const stack = Object.values(manifest.artifacts).find((a) => a.type === 'aws:cloudformation:stack')!;
  const template = JSON.parse(readFileSync(join(assembly, stack.properties!.templateFile!), 'utf8'));
  resources = (template as { Resources: Record<string, Resource> }).Resources;
}, 180_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the bundles that `npx cdk synth` stages', () => {
  it('are minified ESM with the createRequire banner and a source map without sources', () => {
    const { bundle } = functionOf('CheckinFunction');
    const code = readFileSync(bundle, 'utf8');
    expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    expect(code).toMatch(/\n\/\/# sourceMappingURL=index\.mjs\.map\n?$/);
    expect(code.split('\n').length).toBeLessThan(200);
    const map = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as { sourcesContent?: unknown };
    expect(map.sourcesContent).toBeUndefined();
  });

  it('are byte for byte what the scripts/bundling.ts options build, so the bench measures the deployed code', async () => {
    const outfile = join(scratch, 'api', BUNDLE_FILE);
    await build(lambdaBuildOptions(join(PROJECT_ROOT, 'functions/checkin.ts'), outfile));
    expect(readFileSync(outfile).equals(readFileSync(functionOf('CheckinFunction').bundle))).toBe(true);
  });

  describe('invoked Lambda-style against dynalite + s3rver', () => {
    let cloud: TestCloud;
    let invocations = 0;

    beforeAll(async () => {
      cloud = await startTestCloud();
    });

    afterAll(async () => {
      await cloud?.dispose();
    });

    /**
     * Runs a function's bundle in a fresh node process as the Lambda runtime would (one cold start,
     * then warm calls), with the template's environment: its Refs point at the local table and bucket.
     */
    async function invoke(
      fn: SynthesizedFunction,
      events: APIGatewayProxyEventV2[],
    ): Promise<{ results: APIGatewayProxyStructuredResultV2[]; logLines: Record<string, unknown>[] }> {
      const { file } = cloud;
      const environment = Object.fromEntries(
        Object.entries(fn.environment).map(([name, value]) => {
          if (typeof value === 'string') return [name, value];
          const type = resources[value.Ref]?.Type;
          if (type === 'AWS::DynamoDB::Table') return [name, file.tableName];
          if (type === 'AWS::S3::Bucket') return [name, file.bucketName];
          throw new Error(`${name} refers to a ${type ?? 'missing resource'} the local cloud does not have`);
        }),
      );
      expect(environment.NODE_OPTIONS).toBe(LAMBDA_NODE_OPTIONS);
      // stdout is the function's log stream (Lambda ships it to CloudWatch), so results go to a file.
      const results = join(scratch, `results-${++invocations}.json`);
      const script =
        "const { writeFileSync } = await import('node:fs');" +
        'const { handler } = await import(process.argv[1]); const out = [];' +
        'for (const event of JSON.parse(process.argv[2])) out.push(await handler(event, {' +
        "  awsRequestId: event.requestContext.requestId, functionName: 'updraft', functionVersion: '$LATEST'," +
        "  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:updraft', memoryLimitInMB: '512' }));" +
        'writeFileSync(process.argv[3], JSON.stringify(out));';
      const { stdout } = await run(
        process.execPath,
        ['--input-type=module', '-e', script, pathToFileURL(fn.bundle).href, JSON.stringify(events), results],
        {
          env: {
            ...environment,
            // What the Lambda runtime adds, then the local endpoints in place of AWS's.
            PATH: process.env.PATH ?? '',
            AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
            AWS_REGION: file.region,
            AWS_ACCESS_KEY_ID: file.credentials.accessKeyId,
            AWS_SECRET_ACCESS_KEY: file.credentials.secretAccessKey,
            AWS_ENDPOINT_URL_DYNAMODB: file.dynamoEndpoint,
            AWS_ENDPOINT_URL_S3: file.s3PublicUrl,
          },
          timeout: 20_000,
        },
      );
      return {
        results: JSON.parse(readFileSync(results, 'utf8')) as APIGatewayProxyStructuredResultV2[],
        logLines: stdout
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      };
    }

    it('checkin: answers a real checkin with a presigned URL that downloads the published image', async () => {
      const image = Buffer.from('firmware 1.1.0 '.repeat(100));
      const update = await seedUpdate(cloud, { product: 'demo', version: '1.1.0' }, image);
      const device = { id: 'bundle-device-1', product: 'demo', version: '1.0.0' };

      const {
        results: [granted, refused],
        logLines,
      } = await invoke(functionOf('CheckinFunction'), [
        apiGatewayPost('/tok/provision/update', cloud.devToken, device),
        apiGatewayPost('/tok/provision/update', 'wrong-token', device),
      ]);

      expect(granted!.statusCode).toBe(200);
      const answer = JSON.parse(String(granted!.body)) as Record<string, unknown>;
      expect(answer).toMatchObject({
        update: update.id,
        version: '1.1.0',
        size: image.length,
        checksum: update.checksum,
      });
      const download = await fetch(String(answer.url));
      expect(download.status).toBe(200);
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(update.checksum);

      expect(refused!.statusCode).toBe(401);
      expect(String(refused!.body).trim()).toBe('Authentication failed');
      // stdout holds the EMF metrics lines (one per invocation that counted something) and, at the
      // template's INFO level, no per-request debug line.
      expect(logLines).toEqual([
        {
          _aws: {
            Timestamp: expect.any(Number),
            CloudWatchMetrics: [
              {
                Namespace: 'Updraft',
                Dimensions: [['product']],
                Metrics: [
                  { Name: 'UpdateRequests', Unit: 'Count' },
                  { Name: 'UpdateStarted', Unit: 'Count' },
                ],
              },
            ],
          },
          product: 'demo',
          UpdateRequests: 1,
          UpdateStarted: 1,
        },
      ]);
    });

    it('report: records the outcome of an update with only the table it is given', async () => {
      const update = await seedUpdate(cloud, { product: 'demo', version: '1.2.0' });
      const device = 'bundle-device-2';
      await invoke(functionOf('CheckinFunction'), [
        apiGatewayPost('/tok/provision/update', cloud.devToken, {
          id: device,
          product: 'demo',
          version: '1.0.0',
        }),
      ]);

      const {
        results: [answer],
      } = await invoke(functionOf('ReportFunction'), [
        apiGatewayPost('/tok/provision/updateReport', cloud.devToken, {
          id: device,
          update: update.id,
          success: true,
        }),
      ]);

      expect(answer!.statusCode).toBe(200);
      expect(answer!.body).toBe('{}');
    });
  });
});
