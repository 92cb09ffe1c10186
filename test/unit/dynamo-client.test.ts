import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import {
  DynamoClient,
  DynamoError,
  type DynamoOperation,
  isNetworkError,
  isRetryable,
  parseDynamoError,
  REQUEST_TIMEOUT,
} from '#functions/dynamo-client.ts';
import type { AwsCredentials } from '#functions/sigv4.ts';
import { CREDS, NOW, SESSION } from '#test/support/aws-credentials.ts';

const INPUT = { TableName: 'updraft', Key: { pk: { S: 'device#demo' }, sk: { S: 'dev-1 ✓' } } };

/** The reference: the SDK's signer configured as @aws-sdk/client-dynamodb configures it, on the same request. */
async function sdkAuthorization(
  headers: Record<string, string>,
  payload: Buffer,
  region: string,
  credentials: AwsCredentials,
  now: number,
): Promise<string> {
  const signer = new SignatureV4({
    service: 'dynamodb',
    region,
    credentials,
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
  });
  // What our request carries before signing; the signer adds x-amz-date and the token itself.
  const { authorization: _ours, 'x-amz-date': _date, 'x-amz-security-token': _token, ...unsigned } = headers;
  const [hostname, port] = (unsigned.host ?? '').split(':');
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname: hostname ?? '',
      ...(port ? { port: Number(port) } : {}),
      path: '/',
      query: {},
      headers: unsigned,
      body: payload,
    },
    { signingDate: new Date(now) },
  );
  return String(signed.headers.authorization);
}

describe('DynamoClient.signedHeaders', () => {
  const cases: Array<[string, { region: string; endpoint?: string }, AwsCredentials, DynamoOperation]> = [
    ['AWS endpoint, long-term keys', { region: 'us-east-1' }, CREDS, 'GetItem'],
    ['AWS endpoint, session token', { region: 'eu-west-1' }, SESSION, 'UpdateItem'],
    ['dynalite with a port', { region: 'us-east-1', endpoint: 'http://127.0.0.1:8000' }, CREDS, 'Query'],
    ['China partition', { region: 'cn-north-1' }, SESSION, 'BatchWriteItem'],
  ];

  it.each(cases)('equals the SDK signer (%s)', async (_, location, credentials, operation) => {
    const client = new DynamoClient({ ...location, credentials: () => credentials });
    const payload = Buffer.from(JSON.stringify(INPUT));

    const headers = client.signedHeaders(operation, payload, credentials, NOW);

    expect(headers.authorization).toBe(
      await sdkAuthorization(headers, payload, location.region, credentials, NOW),
    );
    client.destroy();
  });

  it('sends the JSON 1.0 headers, signing the token only when there is one', () => {
    const client = new DynamoClient({ region: 'us-east-1', credentials: () => CREDS });
    const payload = Buffer.from('{}');

    const plain = client.signedHeaders('PutItem', payload, CREDS, NOW);
    const withToken = client.signedHeaders('PutItem', payload, SESSION, NOW);

    expect(plain).toMatchObject({
      'content-type': 'application/x-amz-json-1.0',
      host: 'dynamodb.us-east-1.amazonaws.com',
      'x-amz-date': '20240506T123456Z',
      'x-amz-target': 'DynamoDB_20120810.PutItem',
    });
    expect(plain).not.toHaveProperty('x-amz-security-token');
    expect(plain.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240506\/us-east-1\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
    expect(withToken['x-amz-security-token']).toBe(SESSION.sessionToken);
    expect(withToken.authorization).toContain(
      'SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,',
    );
  });

  it('signs with the new key after the secret or the day changes', async () => {
    const client = new DynamoClient({ region: 'us-east-1', credentials: () => CREDS });
    const payload = Buffer.from(JSON.stringify(INPUT));
    const nextDay = NOW + 86_400_000;
    client.signedHeaders('GetItem', payload, CREDS, NOW);

    const rotated = client.signedHeaders('GetItem', payload, SESSION, NOW);
    const tomorrow = client.signedHeaders('GetItem', payload, SESSION, nextDay);

    expect(rotated.authorization).toBe(await sdkAuthorization(rotated, payload, 'us-east-1', SESSION, NOW));
    expect(tomorrow.authorization).toBe(
      await sdkAuthorization(tomorrow, payload, 'us-east-1', SESSION, nextDay),
    );
  });

  it.each([
    ['not a URL', 'expected a URL'],
    ['ftp://127.0.0.1:8000', 'the scheme must be http or https'],
    ['http://127.0.0.1:8000/prefix', 'expected scheme, host and port only'],
  ])('rejects the endpoint %s', (endpoint, reason) => {
    expect(() => new DynamoClient({ region: 'us-east-1', endpoint, credentials: () => CREDS })).toThrow(
      `Invalid DynamoDB endpoint "${endpoint}": ${reason}`,
    );
  });
});

describe('parseDynamoError', () => {
  it('takes the type after # and the message', () => {
    const err = parseDynamoError(
      400,
      '{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}',
    );

    expect(err).toBeInstanceOf(DynamoError);
    expect(err).toMatchObject({
      name: 'ConditionalCheckFailedException',
      message: 'The conditional request failed',
      status: 400,
      retryable: false,
    });
  });

  it('reads Message spelled with a capital and types without a namespace', () => {
    expect(
      parseDynamoError(400, '{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad key"}'),
    ).toMatchObject({ name: 'ValidationException', message: 'bad key' });
    expect(parseDynamoError(400, '{"__type":"ResourceNotFoundException"}')).toMatchObject({
      name: 'ResourceNotFoundException',
      message: 'DynamoDB answered HTTP 400',
    });
  });

  it('falls back to x-amzn-errortype, then to the status', () => {
    expect(
      parseDynamoError(
        400,
        '',
        'ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/',
      ),
    ).toMatchObject({ name: 'ThrottlingException', retryable: true });
    expect(parseDynamoError(503, '<html>Service Unavailable</html>')).toMatchObject({
      name: 'InternalServerError',
      message: 'DynamoDB answered HTTP 503',
      status: 503,
      retryable: true,
    });
    expect(parseDynamoError(403, 'null')).toMatchObject({ name: 'UnknownError', retryable: false });
  });
});

describe('isRetryable', () => {
  const networkError = (code: string) => Object.assign(new Error(code), { code });
  const error = (type: string, status: number) =>
    parseDynamoError(status, JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}` }));

  it.each<[string, unknown, boolean]>([
    ['throughput exceeded', error('ProvisionedThroughputExceededException', 400), true],
    ['throttling', error('ThrottlingException', 400), true],
    ['request limit', error('RequestLimitExceeded', 400), true],
    ['500', error('InternalServerError', 500), true],
    ['503', error('ServiceUnavailable', 503), true],
    ['condition failure', error('ConditionalCheckFailedException', 400), false],
    ['validation', error('ValidationException', 400), false],
    ['missing table', error('ResourceNotFoundException', 400), false],
    ['bad signature', error('InvalidSignatureException', 400), false],
    ['connection reset', networkError('ECONNRESET'), true],
    ['connection refused', networkError('ECONNREFUSED'), true],
    ['connect timeout', networkError('ETIMEDOUT'), true],
    ['broken pipe', networkError('EPIPE'), true],
    ['request timeout', networkError(REQUEST_TIMEOUT), false],
    ['unknown host', networkError('ENOTFOUND'), false],
    ['a bug', new TypeError('x is undefined'), false],
    ['not an error', 'ECONNRESET', false],
  ])('%s → %s', (_, err, retryable) => {
    expect(isRetryable(err)).toBe(retryable);
  });

  it('counts timeouts and unknown hosts as network errors though they are not retried', () => {
    expect(isNetworkError(networkError(REQUEST_TIMEOUT))).toBe(true);
    expect(isNetworkError(networkError('ENOTFOUND'))).toBe(true);
    expect(isNetworkError(error('ThrottlingException', 400))).toBe(false);
  });
});
