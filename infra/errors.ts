/** Errors of the infrastructure app. No aws-cdk-lib import: the CLI loads this file too. */

/** The `clouds` context in cdk.json is invalid; `problems` lists every problem found, not just the first. */
export class CloudConfigError extends Error {
  override readonly name = 'CloudConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid "clouds" in cdk.json context: ${problems.join('; ')}`);
  }
}

/** `cdk-outputs.json` does not hold what `npx cdk deploy --all --outputs-file cdk-outputs.json` writes. */
export class CloudOutputsError extends Error {
  override readonly name = 'CloudOutputsError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid cdk-outputs.json: ${problems.join('; ')}`);
  }
}

/** A construct used in a way that would deploy a broken or over-privileged function. */
export class ConstructUsageError extends Error {
  override readonly name = 'ConstructUsageError';
}
