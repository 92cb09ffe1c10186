/**
 * One device cloud (DESIGN §8): table, image bucket, the checkin and report functions behind an
 * HTTPS endpoint serving the two Ioto paths, and the outputs the CLI reads from cdk-outputs.json.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { type CloudConfig, stackNameOf } from './clouds.ts';
import { type TableAction, UpdraftFunction } from './function.ts';
import { OUTPUT_KEYS } from './outputs.ts';

/** Device-facing paths (DESIGN §2), fixed by the existing Ioto clients. */
export const CHECKIN_PATH = '/tok/provision/update';
export const REPORT_PATH = '/tok/provision/updateReport';

/** What each handler does with the table (functions/): conditional writes and ADD counters, no scans. */
export const CHECKIN_TABLE_ACTIONS: readonly TableAction[] = [
  'GetItem',
  'Query',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
];
export const REPORT_TABLE_ACTIONS: readonly TableAction[] = ['GetItem', 'Query', 'PutItem', 'UpdateItem'];

/** One JSON line per request, HTTP API variables only (the REST API's standard fields are partly missing here). */
const HTTP_API_ACCESS_LOG = apigw.AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    ip: '$context.identity.sourceIp',
    userAgent: '$context.identity.userAgent',
    time: '$context.requestTime',
    route: '$context.routeKey',
    status: '$context.status',
    bytes: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationMs: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
  }),
);

export interface UpdraftThrottle {
  /** Steady requests per second across all devices. */
  readonly rateLimit: number;
  /** Requests allowed in a burst above the steady rate. */
  readonly burstLimit: number;
}

export interface UpdraftStackProps extends Omit<StackProps, 'env' | 'stackName'> {
  readonly cloud: CloudConfig;
  /**
   * Stage throttling. Daily checkins of a million devices average 12 requests per second; the limit
   * caps the bill and the blast radius of a fleet that checks in in lockstep.
   * @default 500 per second, bursts of 1000
   */
  readonly throttle?: UpdraftThrottle;
  /** @default one month, for function and access logs */
  readonly logRetention?: logs.RetentionDays;
}

export class UpdraftStack extends Stack {
  readonly table: dynamodb.Table;
  readonly images: s3.Bucket;
  readonly checkin: UpdraftFunction;
  readonly report: UpdraftFunction;
  readonly api: apigwv2.HttpApi;

  constructor(scope: Construct, props: UpdraftStackProps) {
    const { cloud, throttle, logRetention = logs.RetentionDays.ONE_MONTH, ...stackProps } = props;
    super(scope, stackNameOf(cloud), {
      ...stackProps,
      // Without an account the stack stays account-agnostic: synth needs no credentials and
      // deploy uses the account of whoever deploys.
      env: cloud.account ? { account: cloud.account, region: cloud.region } : { region: cloud.region },
      description: `Updraft device cloud "${cloud.name}": checkin and report API, update images, device registry`,
    });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // S3 server access logging delivers only to buckets encrypted with S3-managed keys.
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.images = new s3.Bucket(this, 'Images', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'images/',
      lifecycleRules: [
        // Large images are uploaded in parts (lib-storage); parts of an interrupted publish cost money forever.
        { abortIncompleteMultipartUploadAfter: Duration.days(3) },
        // `updraft delete` leaves a recoverable noncurrent version; keep it for a while, not forever.
        { noncurrentVersionExpiration: Duration.days(30) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.checkin = new UpdraftFunction(this, 'Checkin', { entry: 'functions/checkin.ts', logRetention })
      .bindTable(this.table, CHECKIN_TABLE_ACTIONS)
      .bindImages(this.images);
    this.report = new UpdraftFunction(this, 'Report', {
      entry: 'functions/report.ts',
      logRetention,
    }).bindTable(this.table, REPORT_TABLE_ACTIONS);

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: `Updraft device cloud "${cloud.name}" (Ioto provisioning paths)`,
      createDefaultStage: false,
    });
    const apiLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention });
    const { rateLimit, burstLimit } = throttle ?? { rateLimit: 500, burstLimit: 1000 };
    this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit, burstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(apiLogs),
        format: HTTP_API_ACCESS_LOG,
      },
    });
    // ANY, not POST: the handlers answer other methods with the 405 of DESIGN §2 (API Gateway would say 404).
    const routes = [
      ...this.api.addRoutes({
        path: CHECKIN_PATH,
        methods: [apigwv2.HttpMethod.ANY],
        integration: new HttpLambdaIntegration('CheckinIntegration', this.checkin.function),
      }),
      ...this.api.addRoutes({
        path: REPORT_PATH,
        methods: [apigwv2.HttpMethod.ANY],
        integration: new HttpLambdaIntegration('ReportIntegration', this.report.function),
      }),
    ];
    for (const route of routes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Devices authenticate with Ioto tokens (Authorization or X-Token header) that the handlers check against hashed tokens in the table; the Ioto clients need the plain-text 401 body an API Gateway authorizer cannot give.',
      });
    }

    new cloudwatch.Alarm(this, 'ApiServerErrorsAlarm', {
      metric: this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `Updraft "${cloud.name}": 5xx answers to devices in the last 5 minutes`,
    });

    const output = (key: keyof typeof OUTPUT_KEYS, value: string, description: string) =>
      new CfnOutput(this, OUTPUT_KEYS[key], { value, description });
    output('name', cloud.name, 'Name builders pass as updraft --cloud');
    // apiEndpoint has no trailing slash, unlike HttpApi.url; devices append the /tok/provision paths.
    output('apiUrl', this.api.apiEndpoint, 'Device API base URL (Ioto update.api)');
    output('tableName', this.table.tableName, 'DynamoDB table');
    output('bucketName', this.images.bucketName, 'S3 bucket of update images');
    output('region', this.region, 'AWS region');
  }
}
