/**
 * `npm run build`: the artifacts a user ships, built exactly as they are deployed: the two Lambda
 * bundles (dist/functions/<name>/index.mjs, with the stack's esbuild options) and the single-file
 * device agent (dist/updraft-agent.mjs). `npx cdk synth` bundles the functions itself; this is for
 * inspecting and testing the artifacts without CDK.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { buildAgent } from '#agent/build.ts';
import { BUNDLE_FILE, lambdaBuildOptions, PROJECT_ROOT } from './bundling.ts';

const outputs: string[] = [];
for (const name of ['checkin', 'report']) {
  const outfile = join(PROJECT_ROOT, 'dist', 'functions', name, BUNDLE_FILE);
  await build(lambdaBuildOptions(`functions/${name}.ts`, outfile));
  outputs.push(outfile);
}
outputs.push(await buildAgent());
for (const file of outputs)
  console.log(`${(statSync(file).size / 1024).toFixed(0).padStart(5)} KiB  ${file}`);
