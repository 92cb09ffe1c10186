/**
 * Stands in for `@aws-sdk/credential-provider-node` inside the Lambda bundles (aliased in
 * infra/bundling.ts). Lambda hands the execution role's credentials to the process in
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, so the rest of the SDK's default
 * chain (profiles, SSO, web identity through STS, ECS and EC2 metadata) never serves a request there,
 * yet it is about a third of a minified bundle and of its cold import. The local cloud and the CLI
 * are not bundled and keep the full chain.
 */

/** Structurally the SDK's AwsCredentialIdentity; its types package is not a direct dependency. */
export interface EnvCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Signature of the SDK's `defaultProvider(init)`: returns a provider the client calls before signing. */
export function defaultProvider(_init?: unknown): () => Promise<EnvCredentials> {
  return async () => {
    const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(
        'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: this Lambda bundle reads credentials from the environment only',
      );
    }
    const sessionToken = process.env.AWS_SESSION_TOKEN;
    return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
  };
}
