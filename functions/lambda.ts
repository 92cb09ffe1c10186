/**
 * The Lambda side: API Gateway v2 / Function URL events in, the shared app's answer out.
 * Built once per cold start.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App } from './app.ts';
import { createCloud } from './cloud.ts';
import { cloudConfigFromEnv } from './config.ts';
import { jsonLogger } from './log.ts';
import { EmfMetrics, type Metrics } from './metrics.ts';
import { credentialsFromEnv } from './presign.ts';

const EMPTY = new Uint8Array(0);

export function lambdaHandler(app: App, metrics: Metrics) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const body = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : EMPTY;
    const response = await app({
      method: event.requestContext.http.method,
      path: event.rawPath,
      headers: event.headers,
      body,
    });
    await metrics.flush();
    return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
  };
}

const cloud = createCloud(cloudConfigFromEnv(), {
  metrics: () => new EmfMetrics(),
  log: jsonLogger('updraft'),
  credentials: () => credentialsFromEnv(),
});

export const handler = lambdaHandler(cloud.app, cloud.metrics);
