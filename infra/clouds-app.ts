/**
 * The CDK app's content, separate from infra/app.ts so tests build the same app in-process:
 * one stack per cloud of the `clouds` context, checked by the cdk-nag AwsSolutions pack.
 */
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseClouds } from './clouds.ts';
import { UpdraftStack } from './stack.ts';

/** Adds a stack per configured cloud. Throws CloudConfigError, listing every problem, on a bad context. */
export function addDeviceClouds(app: App): UpdraftStack[] {
  const clouds = parseClouds(app.node.tryGetContext('clouds'));
  const stacks = clouds.map((cloud) => new UpdraftStack(app, { cloud }));
  // A validation plugin (cdk-nag 3): any unacknowledged finding fails synth with a report; every
  // acknowledgement in infra/ carries its reason.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stacks;
}
