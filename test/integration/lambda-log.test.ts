/**
 * The Lambda entry's log lines, from a fresh node process as the Lambda runtime runs it (one cold
 * start, then warm calls) against dynalite + s3rver: each line carries the invocation's request id
 * and cold-start flag, and the level comes from the environment.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, logLevelFromEnv } from '#functions/config.ts';
import { SDK_WARNING_ENV } from '#scripts/sdk-env.ts';
import { apiGatewayPost } from '#test/support/api-gateway.ts';
import { startTestCloud, type TestCloud } from '#test/support/cloud.ts';

const run = promisify(execFile);
const ENTRY = new URL('../../functions/checkin.ts', import.meta.url).href;

let cloud: TestCloud;

beforeAll(async () => {
  cloud = await startTestCloud();
});

afterAll(async () => {
  await cloud?.dispose();
});

function checkinEvent(token: string): APIGatewayProxyEventV2 {
  return apiGatewayPost('/tok/provision/update', token, {
    id: 'log-device',
    product: 'demo',
    version: '1.0.0',
  });
}

function lambdaContext(awsRequestId: string): Partial<Context> {
  return {
    awsRequestId,
    functionName: 'updraft-checkin',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:updraft-checkin',
    memoryLimitInMB: '512',
  };
}

interface LogLine {
  readonly level?: string;
  readonly message?: string;
  readonly function_request_id?: string;
  readonly cold_start?: boolean;
  readonly [key: string]: unknown;
}

/** Invokes the checkin entry once per event in one process; returns the JSON lines it logged. */
async function invokeCheckin(
  events: APIGatewayProxyEventV2[],
  env: Record<string, string>,
): Promise<{ stdout: LogLine[]; stderr: LogLine[] }> {
  const { file } = cloud;
  const script =
    'const { handler } = await import(process.argv[1]); const calls = JSON.parse(process.argv[2]);' +
    'for (const [event, context] of calls) await handler(event, context);';
  const calls = events.map((event, i) => [event, lambdaContext(`req-${i + 1}`)]);
  const { stdout, stderr } = await run(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, ENTRY, JSON.stringify(calls)],
    {
      env: {
        PATH: process.env.PATH ?? '',
        ...SDK_WARNING_ENV,
        // What the Lambda runtime sets for a container started by a request.
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_REGION: file.region,
        AWS_ACCESS_KEY_ID: file.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: file.credentials.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: file.dynamoEndpoint,
        AWS_ENDPOINT_URL_S3: file.s3PublicUrl,
        TABLE_NAME: file.tableName,
        BUCKET_NAME: file.bucketName,
        ...env,
      },
      timeout: 20_000,
    },
  );
  const parse = (text: string) =>
    text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as LogLine);
  return { stdout: parse(stdout), stderr: parse(stderr) };
}

describe('Lambda log lines', () => {
  it('carry the request id and the cold-start flag; DEBUG adds one line per request', async () => {
    const { stdout } = await invokeCheckin([checkinEvent(cloud.devToken), checkinEvent('wrong-token')], {
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
    });

    const requests = stdout.filter((line) => line.message === 'request');
    expect(requests).toEqual([
      expect.objectContaining({
        level: 'DEBUG',
        service: 'updraft',
        function_request_id: 'req-1',
        cold_start: true,
        method: 'POST',
        path: '/tok/provision/update',
        status: 200,
      }),
      expect.objectContaining({
        level: 'DEBUG',
        function_request_id: 'req-2',
        cold_start: false,
        status: 401,
      }),
    ]);
  });

  it('log errors with the request id at the default level, and nothing per request', async () => {
    const { stdout, stderr } = await invokeCheckin([checkinEvent(cloud.devToken)], {
      // A closed port: the store is unreachable, so the app logs an error and answers 503.
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
    });

    expect(stdout.filter((line) => line.message === 'request')).toEqual([]);
    expect(stderr).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'store unavailable',
        function_request_id: 'req-1',
        cold_start: true,
        path: '/tok/provision/update',
        error: expect.objectContaining({ name: 'StoreUnavailableError' }),
      }),
    ]);
  });

  it('take the level from POWERTOOLS_LOG_LEVEL, then LOG_LEVEL, and refuse a misspelt one', () => {
    expect(logLevelFromEnv({})).toBe('INFO');
    expect(logLevelFromEnv({ LOG_LEVEL: 'warn' })).toBe('WARN');
    expect(logLevelFromEnv({ POWERTOOLS_LOG_LEVEL: 'debug', LOG_LEVEL: 'ERROR' })).toBe('DEBUG');
    expect(() => logLevelFromEnv({ POWERTOOLS_LOG_LEVEL: 'verbose' })).toThrow(
      new ConfigError(
        'Invalid POWERTOOLS_LOG_LEVEL "verbose": use one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT',
      ),
    );
  });
});
