/**
 * The device clouds to deploy, read from the `clouds` context of cdk.json (or `-c clouds='[…]'`).
 * Pure: validates and reports every problem at once, like AWS Solutions Constructs do with props.
 */
import { CloudConfigError } from './errors.ts';

/** One device cloud: one stack `updraft-<name>` in one account and region. */
export interface CloudConfig {
  /** What builders pass as `updraft --cloud NAME`; lower case, digits and `-`. */
  readonly name: string;
  readonly region: string;
  /** 12-digit AWS account id. Absent: the account of the credentials used at deploy time. */
  readonly account?: string;
}

/** `local` names the embedded cloud of `npm start` in the CLI, so no deployed cloud may take it. */
const RESERVED_NAMES = new Set(['local']);
/** A cloud name: also part of the stack name and of `updraft --cloud NAME`. */
export const CLOUD_NAME = /^[a-z][a-z0-9-]{0,29}$/;
// Commercial, GovCloud, China and ISO partitions: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1.
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const ACCOUNT = /^\d{12}$/;
const KEYS = new Set(['name', 'region', 'account']);

/** Stack name of a cloud; CloudFormation stack names allow letters, digits and `-`. */
export function stackNameOf(cloud: Pick<CloudConfig, 'name'>): string {
  return `updraft-${cloud.name}`;
}

/**
 * Validates the `clouds` context value. A string is parsed as JSON, which is what `cdk -c clouds='[…]'`
 * passes. Throws CloudConfigError listing every problem.
 */
export function parseClouds(value: unknown): CloudConfig[] {
  if (value === undefined) {
    throw new CloudConfigError([
      'missing; add "clouds": [{"name": "prod", "region": "us-east-1"}] to "context" in cdk.json',
    ]);
  }
  let list = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      throw new CloudConfigError([`not valid JSON: ${JSON.stringify(value.slice(0, 80))}`]);
    }
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new CloudConfigError(['must be a non-empty array of {"name", "region", "account"?} objects']);
  }
  const problems: string[] = [];
  const clouds: CloudConfig[] = [];
  const seen = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const at = `clouds[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${at} must be an object like {"name": "prod", "region": "us-east-1"}`);
      return;
    }
    const fields = entry as Record<string, unknown>;
    const before = problems.length;
    for (const key of Object.keys(fields)) {
      if (!KEYS.has(key)) problems.push(`${at} has unknown key "${key}" (allowed: name, region, account)`);
    }
    const { name, region, account } = fields;
    if (typeof name !== 'string' || !CLOUD_NAME.test(name)) {
      problems.push(
        invalid(`${at}.name`, name, 'use 1-30 lower-case letters, digits and "-", starting with a letter'),
      );
    } else if (RESERVED_NAMES.has(name)) {
      problems.push(`${at}.name "${name}" is reserved for the embedded cloud of npm start; choose another`);
    } else if (seen.has(name)) {
      problems.push(`${at}.name "${name}" is used twice; cloud names must be unique`);
    }
    if (typeof name === 'string') seen.add(name);
    if (typeof region !== 'string' || !REGION.test(region)) {
      problems.push(invalid(`${at}.region`, region, 'use an AWS region such as "us-east-1"'));
    }
    if (account !== undefined && (typeof account !== 'string' || !ACCOUNT.test(account))) {
      problems.push(
        invalid(`${at}.account`, account, 'use a 12-digit AWS account id as a string, or leave it out'),
      );
    }
    if (problems.length > before) return;
    clouds.push({
      name: name as string,
      region: region as string,
      ...(account === undefined ? {} : { account: account as string }),
    });
  });
  if (problems.length > 0) throw new CloudConfigError(problems);
  return clouds;
}

function invalid(field: string, value: unknown, rule: string): string {
  return value === undefined
    ? `${field} is missing (${rule})`
    : `${field} ${JSON.stringify(value)} is invalid: ${rule}`;
}
