/**
 * `--cloud NAME`: where a command sends its writes. `local` is the embedded cloud of `npm start`,
 * found through `<data>/cloud.json`; any other name is a deployed stack listed in the outputs file
 * of `npx cdk deploy --all --outputs-file cdk-outputs.json`, reached with the SDK's default
 * credential chain. `all` means every cloud of the outputs file (publish only).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { awsEndpointsFromEnv } from '#admin/index.ts';
import { Table } from '#functions/dynamo.ts';
import { type CloudOutputs, readCloudOutputs } from '#infra/outputs.ts';
import { notifyLocalChange, readCloudFile } from '#local/cloud-file.ts';
import { SdkTableClient } from './dynamo-sdk.ts';
import { CliError, type StoreDescription } from './errors.ts';
import { ImageStore } from './s3.ts';

export const LOCAL_CLOUD = 'local';
export const ALL_CLOUDS = 'all';

/** Where to look for clouds. */
export interface CloudSources {
  /** Data dir of the local cloud (`--data`, `$UPDRAFT_DATA`, default `.data`). */
  readonly dataDir: string;
  /** The CDK outputs file (`--outputs`, `$UPDRAFT_OUTPUTS`, default `cdk-outputs.json`). */
  readonly outputsFile: string;
}

/** An open connection to one device cloud's table and bucket. */
export interface CloudTarget {
  readonly name: string;
  /** Device-facing API base URL. */
  readonly apiUrl: string;
  readonly table: Table;
  readonly images: ImageStore;
  /** Names the table in error messages. */
  readonly store: StoreDescription;
  /** Tells the cloud its update lists changed (the local cloud reloads at once). */
  readonly notifyChange?: () => void;
  close(): void;
}

const START_LOCAL = 'start the local cloud with npm start (or pass --data DIR)';

function readOutputs(file: string): Record<string, CloudOutputs> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(
      `No deployed clouds: ${file} not found; deploy with \`npx cdk deploy --all --outputs-file cdk-outputs.json\` or pass --outputs FILE`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(
      `${file} is not JSON; rewrite it with \`npx cdk deploy --all --outputs-file ${file}\``,
    );
  }
  try {
    return readCloudOutputs(json);
  } catch (err) {
    throw new CliError((err as Error).message, undefined, { cause: err });
  }
}

/** The cloud names `--cloud NAME` stands for: NAME itself, or every deployed cloud for `all`. */
export function cloudNames(name: string, sources: CloudSources): string[] {
  if (name !== ALL_CLOUDS) return [name];
  const names = Object.keys(readOutputs(sources.outputsFile));
  if (names.length === 0)
    throw new CliError(`${sources.outputsFile} lists no device clouds; deploy one first`);
  return names;
}

export function openCloud(name: string, sources: CloudSources): CloudTarget {
  if (name === LOCAL_CLOUD) return openLocal(sources.dataDir);
  const clouds = readOutputs(sources.outputsFile);
  const cloud = Object.hasOwn(clouds, name) ? clouds[name] : undefined;
  if (!cloud) {
    const known = [LOCAL_CLOUD, ...Object.keys(clouds)].join(', ');
    throw new CliError(`Unknown cloud "${name}": use one of ${known} (from ${sources.outputsFile})`);
  }
  // Profiles, SSO, web identity, instance roles: whatever the user's AWS setup provides. The provider
  // caches the credentials until they expire, so the table may call it before every request.
  const { dynamoEndpoint, s3Endpoint } = awsEndpointsFromEnv(process.env);
  const table = new Table({
    tableName: cloud.tableName,
    region: cloud.region,
    client: new SdkTableClient({
      region: cloud.region,
      credentials: defaultProvider(),
      ...(dynamoEndpoint ? { endpoint: dynamoEndpoint } : {}),
    }),
  });
  const images = new ImageStore({
    region: cloud.region,
    bucket: cloud.bucketName,
    ...(s3Endpoint ? { endpoint: s3Endpoint } : {}),
  });
  return {
    name,
    apiUrl: cloud.apiUrl,
    table,
    images,
    store: {
      where: `DynamoDB table ${cloud.tableName} in ${cloud.region}`,
      hint: 'check your network and AWS credentials',
    },
    close: () => {
      table.client.destroy();
      images.destroy();
    },
  };
}

function openLocal(dataDir: string): CloudTarget {
  const dir = resolve(dataDir);
  let file: ReturnType<typeof readCloudFile>;
  try {
    file = readCloudFile(dir);
  } catch (err) {
    throw new CliError((err as Error).message, undefined, { cause: err });
  }
  // The local cloud's own credentials (<data>/credentials.json, copied into cloud.json): its store
  // refuses any other signature.
  const table = new Table({
    tableName: file.tableName,
    region: file.region,
    client: new SdkTableClient({
      region: file.region,
      endpoint: file.dynamoEndpoint,
      credentials: { ...file.credentials },
    }),
  });
  const images = new ImageStore({
    region: file.region,
    bucket: file.bucketName,
    endpoint: file.s3Endpoint,
    credentials: { ...file.credentials },
    unreachableHint: START_LOCAL,
    ...(file.caFile ? { caFile: file.caFile } : {}),
  });
  return {
    name: LOCAL_CLOUD,
    apiUrl: file.apiUrl,
    table,
    images,
    store: { where: `DynamoDB at ${file.dynamoEndpoint}`, hint: START_LOCAL },
    notifyChange: () => notifyLocalChange(dir),
    close: () => {
      table.client.destroy();
      images.destroy();
    },
  };
}
