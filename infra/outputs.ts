/**
 * The stack outputs of a device cloud, as `npx cdk deploy --all --outputs-file cdk-outputs.json` writes them:
 * `{"updraft-prod": {"CloudName": "prod", "ApiUrl": "https://…", "TableName": …, "BucketName": …, "Region": …}}`.
 * The stack names its CfnOutputs with OUTPUT_KEYS and the CLI reads them back with readCloudOutputs.
 * Pure and free of aws-cdk-lib so the CLI can import it cheaply.
 */
import { CLOUD_NAME } from './clouds.ts';
import { CloudOutputsError } from './errors.ts';

/** Where the CLI finds a deployed device cloud. */
export interface CloudOutputs {
  readonly name: string;
  /** https base URL without a trailing slash; devices POST to `${apiUrl}/tok/provision/update`. */
  readonly apiUrl: string;
  readonly tableName: string;
  readonly bucketName: string;
  readonly region: string;
}

/** CfnOutput ids of the stack, by CloudOutputs field. */
export const OUTPUT_KEYS = {
  name: 'CloudName',
  apiUrl: 'ApiUrl',
  tableName: 'TableName',
  bucketName: 'BucketName',
  region: 'Region',
} as const satisfies Record<keyof CloudOutputs, string>;

/**
 * Reads the parsed content of cdk-outputs.json into clouds keyed by cloud name. Stacks without a
 * `CloudName` output are not device clouds and are skipped. Throws CloudOutputsError listing every problem.
 */
export function readCloudOutputs(json: unknown): Record<string, CloudOutputs> {
  if (!isRecord(json)) {
    throw new CloudOutputsError([
      'expected a JSON object of stack name → outputs; run `npx cdk deploy --all --outputs-file cdk-outputs.json`',
    ]);
  }
  const problems: string[] = [];
  const clouds: Record<string, CloudOutputs> = {};
  for (const [stack, outputs] of Object.entries(json)) {
    if (!isRecord(outputs) || outputs[OUTPUT_KEYS.name] === undefined) continue;
    const before = problems.length;
    const field = (key: keyof CloudOutputs): string => {
      const value = outputs[OUTPUT_KEYS[key]];
      if (typeof value === 'string' && value !== '') return value;
      problems.push(`stack ${stack} lacks output ${OUTPUT_KEYS[key]}; redeploy it with the current infra/`);
      return '';
    };
    const cloud: CloudOutputs = {
      name: field('name'),
      apiUrl: field('apiUrl').replace(/\/+$/, ''),
      tableName: field('tableName'),
      bucketName: field('bucketName'),
      region: field('region'),
    };
    if (cloud.apiUrl !== '' && !cloud.apiUrl.startsWith('https://')) {
      problems.push(
        `stack ${stack} output ${OUTPUT_KEYS.apiUrl} ${JSON.stringify(cloud.apiUrl)} is not an https URL`,
      );
    }
    if (cloud.name !== '' && !CLOUD_NAME.test(cloud.name)) {
      problems.push(
        `stack ${stack} output ${OUTPUT_KEYS.name} ${JSON.stringify(cloud.name)} is not a cloud name`,
      );
    } else if (Object.hasOwn(clouds, cloud.name)) {
      problems.push(`cloud "${cloud.name}" appears in two stacks; cloud names must be unique`);
    }
    if (problems.length === before) clouds[cloud.name] = cloud;
  }
  if (problems.length > 0) throw new CloudOutputsError(problems);
  return clouds;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
