/**
 * SigV4 primitives shared by the S3 presigner (functions/presign.ts) and the DynamoDB client
 * (functions/dynamo-client.ts): credentials, the partition DNS suffixes, the two date formats and the
 * signing-key cache. node:crypto only, so neither caller needs the SDK in the Lambda bundle.
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export const ALGORITHM = 'AWS4-HMAC-SHA256';

/** Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (what Lambda provides); throws a clear Error naming the missing variable. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId) {
    throw new Error(
      'Missing environment variable AWS_ACCESS_KEY_ID: set it (Lambda does) to sign AWS requests',
    );
  }
  if (!secretAccessKey) {
    throw new Error(
      'Missing environment variable AWS_SECRET_ACCESS_KEY: set it (Lambda does) to sign AWS requests',
    );
  }
  const sessionToken = env.AWS_SESSION_TOKEN;
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

/** DNS suffixes of the AWS partitions other than `aws` (amazonaws.com, also used by aws-us-gov). */
const PARTITION_SUFFIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^cn-\w+-\d+$/, 'amazonaws.com.cn'],
  [/^eusc-de-\w+-\d+$/, 'amazonaws.eu'],
  [/^us-iso-\w+-\d+$/, 'c2s.ic.gov'],
  [/^us-isob-\w+-\d+$/, 'sc2s.sgov.gov'],
  [/^eu-isoe-\w+-\d+$/, 'cloud.adc-e.uk'],
  [/^us-isof-\w+-\d+$/, 'csp.hci.ic.gov'],
];

/** The domain of a region's service endpoints, e.g. amazonaws.com.cn for cn-north-1. */
export function dnsSuffix(region: string): string {
  for (const [pattern, suffix] of PARTITION_SUFFIXES) if (pattern.test(region)) return suffix;
  return 'amazonaws.com';
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/**
 * The X-Amz-Date (`20240506T123456Z`) and date stamp (`20240506`) of a time, formatted again only
 * when the second changes: signing runs per request, formatting a Date is a measurable part of it.
 */
export class AmzClock {
  #second = Number.NaN;
  amzDate = '';
  dateStamp = '';

  /** Moves the clock to `now` (ms epoch); read amzDate/dateStamp after. */
  set(now: number): this {
    const second = Math.floor(now / 1000);
    if (second === this.#second) return this;
    // toISOString: 2024-05-06T12:34:56.000Z → 20240506T123456Z
    const iso = new Date(second * 1000).toISOString();
    this.#second = second;
    this.dateStamp = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10);
    this.amzDate = `${this.dateStamp}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
    return this;
  }
}

/**
 * The signing key of one region and service: four HMACs, derived again only when the secret or the
 * UTC day changes (credentials rotate hourly at most, so almost every request reuses it).
 */
export class SigningKeys {
  #secret: string | undefined;
  #dateStamp = '';
  #key: Buffer = Buffer.alloc(0);

  constructor(
    readonly region: string,
    readonly service: string,
  ) {}

  /** `<date>/<region>/<service>/aws4_request`. */
  scope(dateStamp: string): string {
    return `${dateStamp}/${this.region}/${this.service}/aws4_request`;
  }

  key(secretAccessKey: string, dateStamp: string): Buffer {
    if (secretAccessKey !== this.#secret || dateStamp !== this.#dateStamp) {
      this.#key = hmac(
        hmac(hmac(hmac(`AWS4${secretAccessKey}`, dateStamp), this.region), this.service),
        'aws4_request',
      );
      this.#secret = secretAccessKey;
      this.#dateStamp = dateStamp;
    }
    return this.#key;
  }

  /** Hex signature of the canonical request made at `amzDate` (RFC: string to sign, then HMAC). */
  sign(secretAccessKey: string, dateStamp: string, amzDate: string, canonicalRequest: string): string {
    const stringToSign = `${ALGORITHM}\n${amzDate}\n${this.scope(dateStamp)}\n${sha256Hex(canonicalRequest)}`;
    return createHmac('sha256', this.key(secretAccessKey, dateStamp)).update(stringToSign).digest('hex');
  }
}
