/**
 * `npm run build`: the artifacts a user ships, built exactly as they are deployed: the two Lambda
 * bundles (dist/functions/<name>/index.mjs, with the stack's esbuild options) and the single-file
 * device agent (dist/updraft-agent.mjs). `npx cdk synth` bundles the functions itself through the
 * same options; this is for inspecting and testing the artifacts without CDK.
 *
 * `npm run build:agent [-- OUTFILE]`: the agent only, to OUTFILE (default dist/updraft-agent.mjs);
 * prints the path it wrote.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildAgent, buildLambdas } from './bundling.ts';

const [what = 'all', outfile, ...extra] = process.argv.slice(2);
if ((what !== 'all' && what !== 'agent') || extra.length > 0 || (what === 'all' && outfile !== undefined)) {
  process.stderr.write('usage: tsx scripts/build.ts [all | agent [OUTFILE]]\n');
  process.exit(2);
}

if (what === 'agent') {
  process.stdout.write(`${await buildAgent(outfile === undefined ? undefined : resolve(outfile))}\n`);
} else {
  const outputs = [...(await buildLambdas()), await buildAgent()];
  for (const file of outputs)
    console.log(`${(statSync(file).size / 1024).toFixed(0).padStart(5)} KiB  ${file}`);
}
