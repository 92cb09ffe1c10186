/**
 * The synthesized device-cloud stacks (aws-cdk-lib/assertions), built from the app as `cdk synth`
 * builds it, with bundling skipped (test/infra/bundle.test.ts bundles for real).
 */
import { readFileSync } from 'node:fs';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { CloudConfigError } from '../../infra/errors.ts';
import { OUTPUT_KEYS, readCloudOutputs } from '../../infra/outputs.ts';
import type { UpdraftStack } from '../../infra/stack.ts';
import { buildApp, buildDefaultApp } from './synth.ts';

type Resources = Record<
  string,
  { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string }
>;

let stacks: UpdraftStack[];
let prod: UpdraftStack;
let template: Template;
let resources: Resources;

function ofType(type: string): [string, Resources[string]][] {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

function logicalId(construct: { node: { defaultChild?: unknown } }): string {
  return prod.getLogicalId(construct.node.defaultChild as CfnElement);
}

beforeAll(() => {
  ({ stacks } = buildApp([
    { name: 'prod', region: 'us-east-1' },
    { name: 'eu', region: 'eu-west-1', account: '123456789012' },
  ]));
  prod = stacks[0]!;
  template = Template.fromStack(prod);
  resources = template.toJSON().Resources as Resources;
});

describe('clouds', () => {
  it('builds one stack per configured cloud, named after it, in its account and region', () => {
    expect(stacks.map((s) => s.stackName)).toEqual(['updraft-prod', 'updraft-eu']);
    expect(stacks[1]!.region).toBe('eu-west-1');
    expect(stacks[1]!.account).toBe('123456789012');
    expect(prod.region).toBe('us-east-1');
    // No account in cdk.json: the stack stays account-agnostic and synthesizes without credentials.
    expect(prod.resolve(prod.account)).toEqual({ Ref: 'AWS::AccountId' });
  });

  it('builds the stacks of the committed cdk.json', () => {
    const { stacks: committed } = buildDefaultApp();
    const { context } = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      context: { clouds: { name: string; region: string }[] };
    };
    expect(context.clouds.length).toBeGreaterThan(0);
    expect(committed.map((s) => [s.stackName, s.region])).toEqual(
      context.clouds.map((c) => [`updraft-${c.name}`, c.region]),
    );
  });

  it('refuses an invalid clouds context with every problem listed', () => {
    expect(() =>
      buildApp([
        { name: 'prod', region: 'nowhere' },
        { name: 'prod', region: 'us-east-1' },
      ]),
    ).toThrow(CloudConfigError);
    expect(() =>
      buildApp([
        { name: 'prod', region: 'nowhere' },
        { name: 'prod', region: 'us-east-1' },
      ]),
    ).toThrow(
      'Invalid "clouds" in cdk.json context: clouds[0].region "nowhere" is invalid: use an AWS region such as ' +
        '"us-east-1"; clouds[1].name "prod" is used twice; cloud names must be unique',
    );
    expect(() => buildApp(undefined)).toThrow(/missing; add "clouds"/);
  });
});

describe('storage', () => {
  it('keeps devices and updates in a retained on-demand table with point-in-time recovery and TTL', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expires', Enabled: true },
      },
    });
    expect(
      template.findResources('AWS::DynamoDB::Table', {
        Properties: { GlobalSecondaryIndexes: Match.anyValue() },
      }),
    ).toEqual({});
  });

  it('keeps images in a private, encrypted, versioned, retained bucket that logs access', () => {
    const images = logicalId(prod.images);
    const bucket = resources[images]!;
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { DestinationBucketName: { Ref: expect.stringMatching(/^AccessLogs/) } },
    });
    const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    const abortDays = rules.map((r) => r.AbortIncompleteMultipartUpload).find(Boolean) as {
      DaysAfterInitiation: number;
    };
    expect(abortDays.DaysAfterInitiation).toBeGreaterThanOrEqual(1);
    expect(abortDays.DaysAfterInitiation).toBeLessThanOrEqual(7);
  });

  it('grants nobody public access and refuses requests without TLS, on both buckets', () => {
    const buckets = ofType('AWS::S3::Bucket');
    expect(buckets).toHaveLength(2);
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.AccessControl, id).toBeUndefined();
      const [, policy] = ofType('AWS::S3::BucketPolicy').find(
        ([, p]) => (p.Properties.Bucket as { Ref: string }).Ref === id,
      )!;
      const statements = (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
        .Statement;
      expect(statements).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
      // The only Allow is S3's log delivery service writing access logs.
      for (const s of statements.filter((s) => s.Effect === 'Allow')) {
        expect(s.Principal).toEqual({ Service: 'logging.s3.amazonaws.com' });
      }
    }
  });
});

describe('functions', () => {
  it('run Node.js 22 on arm64 from the ESM bundle, with their table and bucket in the environment', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    for (const [, fn] of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        Environment: {
          Variables: {
            TABLE_NAME: { Ref: logicalId(prod.table) },
            NODE_OPTIONS: '--enable-source-maps',
            POWERTOOLS_LOG_LEVEL: 'INFO',
          },
        },
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringMatching(/Logs/) } },
      });
    }
    const checkin = resources[logicalId(prod.checkin.function)]!;
    expect(
      (checkin.Properties.Environment as { Variables: Record<string, unknown> }).Variables.BUCKET_NAME,
    ).toEqual({
      Ref: logicalId(prod.images),
    });
  });

  it('hold least-privilege IAM: exact actions on the table, GetObject on images/* only, their own log group', () => {
    const table = { 'Fn::GetAtt': [logicalId(prod.table), 'Arn'] };
    const images = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(prod.images), 'Arn'] }, '/images/*']] };
    const statementsOf = (fn: UpdraftStack['checkin']) => {
      const role = logicalId(fn.role);
      const policies = ofType('AWS::IAM::Policy').filter(([, p]) =>
        (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === role),
      );
      return policies.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: unknown[] }).Statement);
    };
    const logs = (fn: UpdraftStack['checkin']) => ({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: { 'Fn::GetAtt': [logicalId(fn.logGroup), 'Arn'] },
    });
    expect(statementsOf(prod.checkin)).toEqual([
      logs(prod.checkin),
      {
        Effect: 'Allow',
        Action: [
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
        ],
        Resource: table,
      },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: images },
    ]);
    expect(statementsOf(prod.report)).toEqual([
      logs(prod.report),
      {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        Resource: table,
      },
    ]);
  });

  it('have no wildcard action and no managed policy anywhere in the stack', () => {
    for (const [id, policy] of ofType('AWS::IAM::Policy')) {
      for (const s of (policy.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] })
        .Statement) {
        for (const action of [s.Action].flat()) expect(action, id).not.toContain('*');
      }
    }
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
      expect(role.Properties.Policies, id).toBeUndefined();
    }
  });

  it('retain their logs for a bounded time and alarm on errors and throttles', () => {
    for (const [, group] of ofType('AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays).toBe(30);
    for (const fn of [prod.checkin, prod.report]) {
      for (const metric of ['Errors', 'Throttles']) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn.function) } }],
          Threshold: 1,
        });
      }
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
    });
  });
});

describe('API', () => {
  it('routes the two Ioto paths to their functions over an HTTP API with throttling and access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
      AccessLogSettings: {
        DestinationArn: Match.anyValue(),
        Format: Match.stringLikeRegexp('\\$context.requestId'),
      },
    });
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual([
      'ANY /tok/provision/update',
      'ANY /tok/provision/updateReport',
    ]);
    const targetOf = (routeKey: string) => {
      const target = (
        routes.find((r) => r.RouteKey === routeKey)!.Target as { 'Fn::Join': [string, unknown[]] }
      )['Fn::Join'][1];
      const integration = resources[(target[1] as { Ref: string }).Ref]!;
      return (integration.Properties.IntegrationUri as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
    };
    expect(targetOf('ANY /tok/provision/update')).toBe(logicalId(prod.checkin.function));
    expect(targetOf('ANY /tok/provision/updateReport')).toBe(logicalId(prod.report.function));
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { PayloadFormatVersion: '2.0' });
  });

  it('outputs what the CLI reads from cdk-outputs.json', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(Object.values(OUTPUT_KEYS).sort());
    expect(outputs.CloudName!.Value).toBe('prod');
    expect(outputs.Region!.Value).toBe('us-east-1');
    expect(outputs.ApiUrl!.Value).toEqual({ 'Fn::GetAtt': [logicalId(prod.api), 'ApiEndpoint'] });
    expect(outputs.TableName!.Value).toEqual({ Ref: logicalId(prod.table) });
    expect(outputs.BucketName!.Value).toEqual({ Ref: logicalId(prod.images) });
    // What `cdk deploy --outputs-file` writes for this stack, read back by the CLI's reader.
    const deployed = Object.fromEntries(
      Object.entries(outputs).map(([key, { Value }]) => [
        key,
        typeof Value === 'string' ? Value : `resolved-${key}`,
      ]),
    );
    deployed.ApiUrl = 'https://abc.execute-api.us-east-1.amazonaws.com';
    expect(readCloudOutputs({ [prod.stackName]: deployed })).toEqual({
      prod: {
        name: 'prod',
        apiUrl: 'https://abc.execute-api.us-east-1.amazonaws.com',
        tableName: 'resolved-TableName',
        bucketName: 'resolved-BucketName',
        region: 'us-east-1',
      },
    });
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged, and every acknowledgement gives a reason', () => {
    const { app } = buildApp([{ name: 'prod', region: 'us-east-1' }]);
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
    expect(
      report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath)}`),
    ).toEqual([]);
    expect(report.success).toBe(true);
    const reasons = app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    // Exactly these: a new acknowledgement is a decision to review, not a side effect.
    expect(reasons.map(([rule]) => rule).sort()).toEqual([
      'Annotation::AwsSolutions-APIG4',
      'Annotation::AwsSolutions-APIG4',
      expect.stringMatching(/^Annotation::AwsSolutions-IAM5\[Resource::<Images\w+\.Arn>\/images\/\*\]$/),
      'Annotation::AwsSolutions-L1',
      'Annotation::AwsSolutions-L1',
    ]);
    for (const [rule, reason] of reasons) expect(reason.length, rule).toBeGreaterThan(40);
    // The app registers the pack itself: synth would fail with the report on any finding.
    const assembly = app.synth();
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['updraft-prod']);
    expect(assembly.stacks[0]!.messages).toEqual([]);
  });

  it('is wired into the app: an unacknowledged finding fails synth', () => {
    const {
      app,
      stacks: [stack],
    } = buildApp([{ name: 'prod', region: 'us-east-1' }]);
    new Bucket(stack!, 'Unchecked');
    expect(() => app.synth()).toThrow(/AwsSolutions-S10/);
  });
});
