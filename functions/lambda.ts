/**
 * The Lambda side: API Gateway v2 / Function URL events in, the shared app's answer out.
 * Built once per cold start.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { App } from './app.ts';
import { createCloud } from './cloud.ts';
import { cloudConfigFromEnv } from './config.ts';
import { jsonLogger, type Logger } from './log.ts';
import { EmfMetrics } from './metrics.ts';
import { credentialsFromEnv } from './sigv4.ts';

const EMPTY = new Uint8Array(0);

export function lambdaHandler(app: App, flush: () => Promise<void>, log: Logger) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const body = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : EMPTY;
    const response = await app({
      method: event.requestContext.http.method,
      path: event.rawPath,
      headers: event.headers,
      body,
    });
    // The container may freeze after we return: write what was summed now. A failure here must
    // not turn an answered checkin into an error.
    await flush().catch((err: unknown) => log.warn('flush failed', { error: err }));
    return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
  };
}

/**
 * Builds a handler from the environment (once per cold start). `images`: whether this function
 * presigns image URLs and so needs the bucket (checkin) or not (report).
 */
export function handlerFromEnv(needs: { images: boolean }) {
  const log = jsonLogger('updraft');
  const cloud = createCloud(cloudConfigFromEnv(process.env, needs), {
    metrics: () => new EmfMetrics(),
    log,
    credentials: () => credentialsFromEnv(),
  });
  return lambdaHandler(cloud.app, cloud.flush, log);
}
