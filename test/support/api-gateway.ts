/** What API Gateway (HTTP API, payload 2.0) hands the Lambda handler for a device's POST. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/** A POST of `payload` as JSON to `path` with `token` as the bearer. */
export function apiGatewayPost(
  path: string,
  token: string,
  payload: Record<string, unknown>,
): APIGatewayProxyEventV2 {
  const body = JSON.stringify(payload);
  return {
    version: '2.0',
    routeKey: `ANY ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-length': String(body.length),
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'api',
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'ioto' },
      requestId: `req-${path}`,
      routeKey: `ANY ${path}`,
      stage: '$default',
      time: '01/Jan/2030:00:00:00 +0000',
      timeEpoch: 1893456000000,
    },
    body,
    isBase64Encoded: false,
  };
}
