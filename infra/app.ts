/** CDK entry (cdk.json "app"): `npx cdk synth`, `npx cdk deploy --all --outputs-file cdk-outputs.json`. */
import { App } from 'aws-cdk-lib';
import { addDeviceClouds } from './clouds-app.ts';
import { CloudConfigError } from './errors.ts';

const app = new App();
try {
  addDeviceClouds(app);
} catch (error) {
  // A configuration mistake deserves one line that says what to fix, not a stack trace.
  if (!(error instanceof CloudConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();
