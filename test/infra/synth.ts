/**
 * Builds the CDK app in-process the way `npx cdk synth` does: cdk.json context (feature flags), then
 * infra/clouds-app.ts. Bundling is skipped unless asked for: a synth without it is ~20x faster and
 * the template is the same apart from asset hashes.
 */
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { addDeviceClouds } from '../../infra/clouds-app.ts';
import type { UpdraftStack } from '../../infra/stack.ts';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

// Skips the CloudFormation schema validation plugin (slow); plugins added by the app, cdk-nag among them, still run.
process.env.CDK_VALIDATION = 'false';

export interface SynthOptions {
  /** Bundle the functions with esbuild as a deploy would. @default false */
  readonly bundle?: boolean;
}

/** The app with `clouds` in place of the cdk.json value (undefined: the key is left out). */
export function buildApp(clouds: unknown, options: SynthOptions = {}): { app: App; stacks: UpdraftStack[] } {
  const context: Record<string, unknown> = { ...cdkJson.context };
  if (clouds === undefined) delete context.clouds;
  else context.clouds = clouds;
  if (!options.bundle) context['aws:cdk:bundling-stacks'] = [];
  const app = new App({ context });
  return { app, stacks: addDeviceClouds(app) };
}

/** The app of cdk.json as committed. */
export function buildDefaultApp(options: SynthOptions = {}): { app: App; stacks: UpdraftStack[] } {
  return buildApp(cdkJson.context.clouds, options);
}
