/**
 * "Deployed" clouds for tests: each a table and a bucket of its own in the test cloud's dynalite and
 * s3rver, listed in a cdk-outputs.json and reached through the SDK's endpoint variables, exactly as
 * `--cloud NAME` reaches a real stack (cli/cloud.ts openCloud).
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ensureTable } from '#local/cloud.ts';
import { signS3Request, type TestCloud } from './cloud.ts';

function putBucket(cloud: TestCloud, bucket: string): Promise<void> {
  const url = `${cloud.s3Url}/${bucket}`;
  const headers = signS3Request('PUT', url, Buffer.alloc(0), cloud.file.credentials);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`bucket ${bucket}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

export interface StandInClouds {
  /** The outputs file listing them. */
  readonly outputsFile: string;
  /** What a process needs to reach them with the SDK's default credential chain. */
  readonly env: Record<string, string>;
}

/** Creates the clouds `names` and writes `<dir>/cdk-outputs.json` listing them. */
export async function createStandInClouds(
  cloud: TestCloud,
  dir: string,
  names: readonly string[],
): Promise<StandInClouds> {
  const stacks: Record<string, Record<string, string>> = {};
  for (const name of names) {
    await ensureTable({ client: cloud.table.client, name: `table-${name}` });
    await putBucket(cloud, `bucket-${name}`);
    stacks[`updraft-${name}`] = {
      CloudName: name,
      ApiUrl: `https://${name}.example.com`,
      TableName: `table-${name}`,
      BucketName: `bucket-${name}`,
      Region: 'us-east-1',
    };
  }
  const outputsFile = join(dir, 'cdk-outputs.json');
  writeFileSync(outputsFile, JSON.stringify(stacks, null, 2));
  return {
    outputsFile,
    env: {
      AWS_ENDPOINT_URL_DYNAMODB: cloud.file.dynamoEndpoint,
      AWS_ENDPOINT_URL_S3: cloud.s3Url,
      AWS_ACCESS_KEY_ID: cloud.file.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cloud.file.credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
  };
}
