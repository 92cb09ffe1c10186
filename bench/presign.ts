/**
 * `presign` (DESIGN §9): presigned GET URLs per second, Presigner.presignGet vs the SDK's
 * getSignedUrl on one long-lived S3Client, same credentials, region, bucket and key.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type AwsCredentials, Presigner, type S3Location } from '#functions/presign.ts';
import { type BenchRow, type BenchSuite, rate, unmeasured } from './row.ts';

const NAME = 'presign';
const UNIT = 'presigns/s';
const BASELINE = 'getSignedUrl (@aws-sdk/s3-request-presigner)';
const MEASURE_MS = 1000;

const location: S3Location = { region: 'us-east-1', bucket: 'updraft-images', forcePathStyle: false };
const credentials: AwsCredentials = {
  accessKeyId: 'ASIABENCHEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+bench==',
};
const key = 'images/demo/1.2.3/demo-1.2.3.bin';

/** Calls per second of an async function awaited one at a time, for about `ms` milliseconds. */
async function asyncRate(fn: () => Promise<unknown>, ms: number): Promise<number> {
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 50; i++) await fn();
    calls += 50;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (calls / elapsed) * 1000;
}

export const suite: BenchSuite = async (): Promise<BenchRow[]> => {
  try {
    const client = new S3Client({
      region: location.region,
      credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const sdk = () =>
      getSignedUrl(client, new GetObjectCommand({ Bucket: location.bucket, Key: key }), { expiresIn: 3600 });
    const presigner = new Presigner(location, () => credentials);
    const ours = () => presigner.presignGet(key, 3600);

    // Same inputs must give the same URL (both clocks read the same second), else the race is unfair.
    const sameSecond = Date.now();
    const expected = await getSignedUrl(client, new GetObjectCommand({ Bucket: location.bucket, Key: key }), {
      expiresIn: 3600,
      signingDate: new Date(sameSecond),
    });
    if (presigner.presignGet(key, 3600, sameSecond) !== expected) {
      return [
        unmeasured(
          NAME,
          UNIT,
          BASELINE,
          'higher',
          'Presigner URL differs from getSignedUrl for the same inputs',
        ),
      ];
    }

    await asyncRate(sdk, 200);
    rate(ours, 200);
    const baselineValue = await asyncRate(sdk, MEASURE_MS);
    const value = rate(ours, MEASURE_MS);
    client.destroy();
    const micros = (perSecond: number) => (1e6 / perSecond).toFixed(perSecond > 1e5 ? 2 : 1);
    return [
      {
        name: NAME,
        value,
        unit: UNIT,
        baseline: BASELINE,
        baselineValue,
        better: 'higher',
        detail: `Presigner ${micros(value)} µs/call, getSignedUrl ${micros(baselineValue)} µs/call`,
      },
    ];
  } catch (error) {
    return [unmeasured(NAME, UNIT, BASELINE, 'higher', (error as Error).message)];
  }
};
