/**
 * The CLI's DynamoDB client: the AWS SDK behind functions/dynamo.ts's TableClient, so the CLI's
 * table has the same operations and domain errors as the Lambda's, plus what the SDK does and our
 * small client leaves out: clock-skew correction (a laptop clock minutes off would otherwise fail
 * with InvalidSignatureException), and the SDK's credential chain. The Lambda bundle keeps
 * functions/dynamo-client.ts. SDK errors become DynamoErrors of the same names; network errors
 * keep their Node `code`.
 */
import { DynamoDB, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { TableClient } from '#functions/dynamo.ts';
import { DynamoError, type DynamoOperation, REQUEST_TIMEOUT } from '#functions/dynamo-client.ts';

export interface SdkTableClientOptions {
  readonly region: string;
  readonly endpoint?: string;
  /** Keys, or a provider such as the SDK's default chain; default: that chain. */
  readonly credentials?: NonNullable<ConstructorParameters<typeof DynamoDB>[0]>['credentials'];
}

/** As the Lambda client's (functions/dynamo-client.ts): answers that say nothing was applied. */
const THROTTLED =
  /^(ProvisionedThroughputExceededException|ThrottlingException|RequestLimitExceeded|TransactionConflictException)$/;
const MAX_ATTEMPTS = 3;

type RetryStrategyV2 = Extract<
  NonNullable<DynamoDBClientConfig['retryStrategy']>,
  { acquireInitialRetryToken: unknown }
>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2['acquireInitialRetryToken']>>;

function retryToken(count: number, delay: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay };
}

/**
 * Retries only answers that say the request was not applied: throttling, and a signature refused
 * for clock skew (the SDK corrects its clock from the answer's Date first). A dropped connection or
 * a 5xx may follow a write that happened, and a repeated `ADD` would count twice (DESIGN §5).
 */
const notAppliedRetries: RetryStrategyV2 = {
  acquireInitialRetryToken: async () => retryToken(0, 0),
  refreshRetryTokenForRetry: async (token, info) => {
    const skewCorrected = (info.error as { $metadata?: { clockSkewCorrected?: boolean } }).$metadata
      ?.clockSkewCorrected;
    const count = token.getRetryCount() + 1;
    const refused = info.errorType === 'THROTTLING' || THROTTLED.test((info.error as Error).name);
    if (count >= MAX_ATTEMPTS || !(skewCorrected || refused)) throw info.error;
    return retryToken(count, skewCorrected ? 0 : Math.random() * 100 * 2 ** count);
  },
  recordSuccess: () => {},
};

/** `GetItem` → `getItem`: the aggregated client's method of an operation. */
function methodOf(operation: DynamoOperation): string {
  return operation[0]!.toLowerCase() + operation.slice(1);
}

function toDomainError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if ((err as { $fault?: unknown }).$fault !== undefined && status !== undefined) {
    const retryable = status >= 500 || THROTTLED.test(err.name);
    // TransactionCanceledException: which writes failed their condition (Table.transact reads them).
    const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    const codes = reasons.map((r) => r.Code ?? 'None');
    return Object.assign(
      new DynamoError(err.name, err.message.split('\n')[0] ?? '', status, retryable, codes),
      { cause: err },
    );
  }
  // The SDK's own timeout: name it as our client does, so both read as "unreachable".
  if (err.name === 'TimeoutError' && (err as { code?: unknown }).code === undefined)
    return Object.assign(err, { code: REQUEST_TIMEOUT });
  return err;
}

export class SdkTableClient implements TableClient {
  readonly #client: DynamoDB;

  constructor(options: SdkTableClientOptions) {
    this.#client = new DynamoDB({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: MAX_ATTEMPTS,
      retryStrategy: notAppliedRetries,
      requestHandler: { connectionTimeout: 5000, requestTimeout: 30_000 },
    });
  }

  /** `_options.idempotent` needs no handling: no request that may have been applied is repeated. */
  async send<T>(
    operation: DynamoOperation,
    input: object,
    _options?: { readonly idempotent?: boolean },
  ): Promise<T> {
    const method = (this.#client as unknown as Record<string, (input: object) => Promise<T>>)[
      methodOf(operation)
    ];
    if (typeof method !== 'function') throw new Error(`The SDK has no DynamoDB operation ${operation}`);
    try {
      return await method.call(this.#client, input);
    } catch (err) {
      throw toDomainError(err);
    }
  }

  destroy(): void {
    this.#client.destroy();
  }
}
