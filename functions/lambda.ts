/**
 * The Lambda side: API Gateway v2 / Function URL events in, the shared app's answer out.
 * Built once per cold start.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { App } from './app.ts';
import { createCloud } from './cloud.ts';
import { AGGREGATES, cloudConfigFromEnv, type LogLevelName, logLevelFromEnv } from './config.ts';
import type { Logger } from './log.ts';
import { EmfMetrics } from './metrics.ts';
import { credentialsFromEnv } from './sigv4.ts';

const EMPTY = new Uint8Array(0);

/**
 * Powertools Logger behind the app's Logger: every line carries the invocation's request id and
 * cold-start flag (set by addContext). Chosen over our own JSON logger after measuring what it adds
 * to the checkin bundle (`npm run bench -- --only bundle`, with and without it): +23 KiB (128 → 151
 * KiB; 275 → 298 KiB once re2js came in) and about +2.5 ms cold import, within the budget of 30 KiB
 * and 10 ms.
 */
export class LambdaLogger implements Logger {
  private readonly powertools: PowertoolsLogger;

  constructor(service: string, level: LogLevelName) {
    this.powertools = new PowertoolsLogger({ serviceName: service, logLevel: level });
  }

  /** Tags the lines of the invocation that starts now; the first call of a container is the cold start. */
  startInvocation(context: Context): void {
    this.powertools.addContext(context);
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.powertools.debug(message, fields ?? {});
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.powertools.info(message, fields ?? {});
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.powertools.warn(message, fields ?? {});
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.powertools.error(message, fields ?? {});
  }
}

export function lambdaHandler(app: App, flush: () => Promise<void>, log: LambdaLogger) {
  return async (
    event: APIGatewayProxyEventV2,
    context: Context,
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    log.startInvocation(context);
    const started = performance.now();
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
    log.debug('request', {
      method: event.requestContext.http.method,
      path: event.rawPath,
      status: response.status,
      ms: Math.round(performance.now() - started),
    });
    return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
  };
}

/**
 * Builds a handler from the environment (once per cold start). `images`: whether this function
 * presigns image URLs and so needs the bucket (checkin) or not (report).
 */
export function handlerFromEnv(needs: { images: boolean }) {
  const log = new LambdaLogger('updraft', logLevelFromEnv(process.env));
  const cloud = createCloud(cloudConfigFromEnv(process.env, needs), {
    metrics: () => new EmfMetrics(),
    log,
    credentials: () => credentialsFromEnv(),
    counterBatchMs: AGGREGATES.lambdaCounterBatchMs,
  });
  return lambdaHandler(cloud.app, cloud.flush, log);
}
