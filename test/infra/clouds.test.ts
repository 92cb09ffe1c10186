/** The `clouds` context of cdk.json and the cdk-outputs.json reader: pure, no CDK synth. */
import { describe, expect, it } from 'vitest';
import { parseClouds, stackNameOf } from '../../infra/clouds.ts';
import { CloudConfigError, CloudOutputsError } from '../../infra/errors.ts';
import { readCloudOutputs } from '../../infra/outputs.ts';

function problemsOf(value: unknown): readonly string[] {
  try {
    parseClouds(value);
  } catch (error) {
    if (error instanceof CloudConfigError) return error.problems;
    throw error;
  }
  throw new Error('parseClouds accepted an invalid value');
}

describe('parseClouds', () => {
  it('accepts clouds with and without an account, and names their stacks', () => {
    const clouds = parseClouds([
      { name: 'prod', region: 'us-east-1' },
      { name: 'eu-2', region: 'eu-west-1', account: '123456789012' },
      { name: 'gov', region: 'us-gov-west-1' },
    ]);
    expect(clouds).toEqual([
      { name: 'prod', region: 'us-east-1' },
      { name: 'eu-2', region: 'eu-west-1', account: '123456789012' },
      { name: 'gov', region: 'us-gov-west-1' },
    ]);
    expect(clouds.map(stackNameOf)).toEqual(['updraft-prod', 'updraft-eu-2', 'updraft-gov']);
  });

  it('parses the JSON string that `cdk -c clouds=…` passes', () => {
    expect(parseClouds('[{"name":"lab","region":"ap-southeast-2"}]')).toEqual([
      { name: 'lab', region: 'ap-southeast-2' },
    ]);
  });

  it('reports every problem of every entry at once', () => {
    const problems = problemsOf([
      { name: 'Prod', region: 'us-east-1' },
      { name: 'eu', region: 'eu-west', account: 123456789012 },
      { name: 'eu', region: 'eu-west-1', acount: '123456789012' },
      { region: 'us-east-1' },
      { name: 'local', region: 'us-east-1' },
      'prod',
    ]);
    expect(problems).toEqual([
      'clouds[0].name "Prod" is invalid: use 1-30 lower-case letters, digits and "-", starting with a letter',
      'clouds[1].region "eu-west" is invalid: use an AWS region such as "us-east-1"',
      'clouds[1].account 123456789012 is invalid: use a 12-digit AWS account id as a string, or leave it out',
      'clouds[2] has unknown key "acount" (allowed: name, region, account)',
      'clouds[2].name "eu" is used twice; cloud names must be unique',
      'clouds[3].name is missing (use 1-30 lower-case letters, digits and "-", starting with a letter)',
      'clouds[4].name "local" is reserved for the embedded cloud of npm start; choose another',
      'clouds[5] must be an object like {"name": "prod", "region": "us-east-1"}',
    ]);
  });

  it('says how to fix a missing, empty or malformed context in one line', () => {
    expect(() => parseClouds(undefined)).toThrow(
      'Invalid "clouds" in cdk.json context: missing; add "clouds": [{"name": "prod", "region": "us-east-1"}] to "context" in cdk.json',
    );
    expect(problemsOf([])).toEqual(['must be a non-empty array of {"name", "region", "account"?} objects']);
    expect(problemsOf({ name: 'prod', region: 'us-east-1' })).toHaveLength(1);
    expect(problemsOf('[{"name":')[0]).toMatch(/^not valid JSON/);
    const error = (() => {
      try {
        parseClouds([
          { name: 'a', region: 'x' },
          { name: 'a', region: 'y' },
        ]);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message.split('\n')).toHaveLength(1);
    expect(error?.message).toContain('clouds[0].region "x"');
    expect(error?.message).toContain('clouds[1].region "y"');
  });
});

describe('readCloudOutputs', () => {
  const prod = {
    CloudName: 'prod',
    ApiUrl: 'https://abc123.execute-api.us-east-1.amazonaws.com',
    TableName: 'updraft-prod-TableCD117FA1-1',
    BucketName: 'updraft-prod-images2d38c313-1',
    Region: 'us-east-1',
  };

  it('reads each deployed cloud by name and skips stacks that are not device clouds', () => {
    const clouds = readCloudOutputs({
      'updraft-prod': prod,
      'updraft-eu': { ...prod, CloudName: 'eu', ApiUrl: 'https://eu.example.com/', Region: 'eu-west-1' },
      CDKToolkit: { BucketName: 'cdk-assets' },
    });
    expect(clouds).toEqual({
      prod: {
        name: 'prod',
        apiUrl: 'https://abc123.execute-api.us-east-1.amazonaws.com',
        tableName: 'updraft-prod-TableCD117FA1-1',
        bucketName: 'updraft-prod-images2d38c313-1',
        region: 'us-east-1',
      },
      eu: {
        name: 'eu',
        apiUrl: 'https://eu.example.com',
        tableName: prod.TableName,
        bucketName: prod.BucketName,
        region: 'eu-west-1',
      },
    });
  });

  it('lists every missing or bad output', () => {
    const read = () =>
      readCloudOutputs({
        'updraft-a': { CloudName: 'a', ApiUrl: 'http://plain.example.com', TableName: 't', BucketName: 'b' },
        'updraft-b': { ...prod, TableName: '' },
        'updraft-c': { ...prod, CloudName: '__proto__' },
        'updraft-d': prod,
        'updraft-e': prod,
      });
    expect(read).toThrow(CloudOutputsError);
    expect(read).toThrow(
      'Invalid cdk-outputs.json: stack updraft-a lacks output Region; redeploy it with the current infra/; ' +
        'stack updraft-a output ApiUrl "http://plain.example.com" is not an https URL; ' +
        'stack updraft-b lacks output TableName; redeploy it with the current infra/; ' +
        'stack updraft-c output CloudName "__proto__" is not a cloud name; ' +
        'cloud "prod" appears in two stacks; cloud names must be unique',
    );
  });

  it('refuses what is not an object of stacks', () => {
    for (const json of [null, [], 'updraft-prod', 3]) {
      expect(() => readCloudOutputs(json)).toThrow(/^Invalid cdk-outputs.json: expected a JSON object/);
    }
  });
});
