/**
 * A device-cloud Lambda function with the project's secure defaults in one place (STYLE.md habit 6):
 * Node.js 22 on arm64, the shared bundling options, its own log group with retention, a role that
 * holds nothing until a bind*() method grants exactly what the handler uses, and alarms.
 */
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULT_LOG_LEVEL, ENV, type LogLevelName } from '#functions/config.ts';
import { LAMBDA_BUNDLING, LAMBDA_NODE_OPTIONS, PROJECT_ROOT } from '#scripts/bundling.ts';
import { ConstructUsageError } from './errors.ts';

/** DynamoDB item and query actions a function may be granted. Scan and batch writes are left out on purpose. */
export type TableAction = 'GetItem' | 'Query' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/** S3 key prefix of the update images (DESIGN §5); functions may read nothing else. */
export const IMAGES_PREFIX = 'images/';

export interface UpdraftFunctionProps {
  /** TypeScript entry exporting `handler`, relative to the repository root, e.g. `functions/checkin.ts`. */
  readonly entry: string;
  /** @default 512 MiB: Lambda gives CPU in proportion, which shortens cold starts of the bundled SDK. */
  readonly memorySize?: number;
  /** @default 10 seconds; API Gateway gives up after 30. */
  readonly timeout?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** @default none: the function scales with the account's unreserved concurrency. */
  readonly reservedConcurrentExecutions?: number;
  /** @default INFO: warnings and errors; DEBUG adds a line per request. Set as POWERTOOLS_LOG_LEVEL. */
  readonly logLevel?: LogLevelName;
}

export class UpdraftFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** Errors and throttles; attach actions (SNS, chat) to reach someone. */
  readonly alarms: readonly cloudwatch.Alarm[];
  private table?: ITable;
  private images?: IBucket;

  constructor(scope: Construct, id: string, props: UpdraftFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    // An own role instead of the default one: the default attaches the AWS managed
    // AWSLambdaBasicExecutionRole, which may write to every log group of the account.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.entry} of the Updraft device cloud ${Stack.of(this).stackName}`,
    });
    this.logGroup.grantWrite(this.role);
    this.function = new NodejsFunction(this, 'Function', {
      entry: `${PROJECT_ROOT}${props.entry}`,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: { NODE_OPTIONS: LAMBDA_NODE_OPTIONS, [ENV.logLevel]: props.logLevel ?? DEFAULT_LOG_LEVEL },
      bundling: {
        ...LAMBDA_BUNDLING,
        format: OutputFormat.ESM,
        externalModules: [...LAMBDA_BUNDLING.externalModules],
        mainFields: [...LAMBDA_BUNDLING.mainFields],
        // Bundle with the esbuild in node_modules: no Docker on developer machines or CI.
        forceDockerBundling: false,
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'DESIGN §8 pins nodejs22.x; the bundle targets node22 and moving to a newer runtime is a deliberate, tested change.',
    });
    const alarm = (name: string, metric: cloudwatch.IMetric, what: string) =>
      new cloudwatch.Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${props.entry}: ${what} in the last 5 minutes`,
      });
    const period = Duration.minutes(5);
    this.alarms = [
      alarm('ErrorsAlarm', this.function.metricErrors({ period, statistic: 'Sum' }), 'invocations failed'),
      alarm(
        'ThrottlesAlarm',
        this.function.metricThrottles({ period, statistic: 'Sum' }),
        'invocations throttled',
      ),
    ];
  }

  /**
   * Sets TABLE_NAME and allows exactly `actions` on the table itself (the design uses no index).
   * One table per function: a second call would silently repoint TABLE_NAME.
   */
  bindTable(table: ITable, actions: readonly TableAction[]): this {
    if (this.table) throw new ConstructUsageError(`${this.node.path} is already bound to a table`);
    if (actions.length === 0)
      throw new ConstructUsageError(`${this.node.path}: bindTable needs at least one action`);
    this.table = table;
    this.function.addEnvironment(ENV.table, table.tableName);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [...new Set(actions)].sort().map((action) => `dynamodb:${action}`),
        resources: [table.tableArn],
      }),
    );
    return this;
  }

  /**
   * Sets BUCKET_NAME and allows s3:GetObject on `images/*` only: a presigned URL carries the signer's
   * permissions, so the function that presigns image downloads must be able to read them itself.
   */
  bindImages(bucket: IBucket): this {
    if (this.images) throw new ConstructUsageError(`${this.node.path} is already bound to an image bucket`);
    this.images = bucket;
    this.function.addEnvironment(ENV.bucket, bucket.bucketName);
    const images = bucket.arnForObjects(`${IMAGES_PREFIX}*`);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [images] }),
    );
    // cdk-nag names a wildcard finding after the resource as it appears in the template.
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(this).resolve(images))}]`,
      reason:
        'Presigned image URLs may name any published image, so the signer reads every key under images/ and nothing else in the bucket.',
    });
    return this;
  }
}

/** Renders a resolved ARN the way cdk-nag does in finding ids: `<Logical.Attr>` for GetAtt, `<Logical>` for Ref. */
function flattenCfnReference(node: unknown): string {
  if (typeof node === 'string') return node;
  if (typeof node === 'object' && node !== null) {
    const fn = node as Record<string, unknown>;
    const join = fn['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map(flattenCfnReference).join(String(join[0]));
    }
    const getAtt = fn['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${getAtt.map(flattenCfnReference).join('.')}>`;
    if ('Ref' in fn) return `<${flattenCfnReference(fn.Ref)}>`;
  }
  return JSON.stringify(node);
}
