/**
 * `npm run build:agent`: the agent as one file for devices, dist/updraft-agent.mjs, with json5 bundled.
 * A device needs node ≥ 20 and this file only: `node updraft-agent.mjs --once`.
 */
import { chmodSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_AGENT_BUNDLE = resolve(ROOT, 'dist/updraft-agent.mjs');

/** Bundles agent/main.ts (or `entry`) into `outfile`; returns the output path. */
export async function buildAgent(
  outfile = DEFAULT_AGENT_BUNDLE,
  entry = resolve(ROOT, 'agent/main.ts'),
): Promise<string> {
  await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    legalComments: 'none',
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = await buildAgent(process.argv[2] ? resolve(process.argv[2]) : undefined);
  process.stdout.write(`${out}\n`);
}
