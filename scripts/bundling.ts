/**
 * How the shipped artifacts are built: the device-cloud Lambda bundles and the single-file device
 * agent. One set of options used by the stack (NodejsFunction in infra/function.ts), by `npm run build`
 * and `npm run build:agent` (scripts/build.ts), by the tests that run the built artifacts and by
 * `npm run bench` (bundle size, cold import), so what is measured and tested is what is deployed.
 * No aws-cdk-lib import: the build and the bench load this without the CDK.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build } from 'esbuild';

/** Repository root: entries, package-lock.json and node_modules are found from here, and esbuild runs here. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Bundled ESM needs `require` for CommonJS dependencies that load node built-ins (parts of the SDK do);
 * Node defines no `require` in ES modules.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/** The options in NodejsFunction's vocabulary (aws-lambda-nodejs BundlingOptions). */
export const LAMBDA_BUNDLING = {
  /** Matches Runtime.NODEJS_22_X in infra/function.ts. */
  target: 'node22',
  format: 'esm',
  minify: true,
  sourceMap: true,
  // The map only serves stack traces; the sources are in git, not needed in every deployment package.
  sourcesContent: false,
  banner: ESM_REQUIRE_BANNER,
  // Ship the SDK version pinned in package-lock.json instead of whatever the runtime carries, and let
  // esbuild drop what the handlers do not use.
  externalModules: [] as string[],
  // The SDK's `module` builds are ES modules that tree-shake better than its CommonJS `main`.
  mainFields: ['module', 'main'],
} as const;

/**
 * Node options of the deployed functions: source maps turn minified stack traces in CloudWatch into
 * readable ones. Node reads and parses the map at import, about 10% of the bundle's cold import
 * (`npm run bench -- --only bundle` measures with it); readable traces of rare 5xx are worth that.
 */
export const LAMBDA_NODE_OPTIONS = '--enable-source-maps';

/** File name NodejsFunction gives an ESM bundle; Lambda loads `index.handler` from it. */
export const BUNDLE_FILE = 'index.mjs';

/** LAMBDA_BUNDLING in esbuild's API, as NodejsFunction passes it to the esbuild CLI. */
export function lambdaBuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: LAMBDA_BUNDLING.target,
    format: LAMBDA_BUNDLING.format,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap,
    sourcesContent: LAMBDA_BUNDLING.sourcesContent,
    banner: { js: LAMBDA_BUNDLING.banner },
    external: [...LAMBDA_BUNDLING.externalModules],
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'silent',
  };
}

/** The device-cloud functions: entry `functions/<name>.ts`, one bundle each. */
export const LAMBDA_FUNCTIONS = ['checkin', 'report'] as const;

/** Bundles each Lambda function as the stack deploys it, into `<outDir>/<name>/index.mjs`; returns the paths. */
export async function buildLambdas(outDir = join(PROJECT_ROOT, 'dist', 'functions')): Promise<string[]> {
  const outputs: string[] = [];
  for (const name of LAMBDA_FUNCTIONS) {
    const outfile = join(outDir, name, BUNDLE_FILE);
    await build(lambdaBuildOptions(`functions/${name}.ts`, outfile));
    outputs.push(outfile);
  }
  return outputs;
}

/** Where `npm run build:agent` writes the agent. */
export const DEFAULT_AGENT_BUNDLE = join(PROJECT_ROOT, 'dist', 'updraft-agent.mjs');

/**
 * Bundles agent/main.ts (or `entry`) into one executable file with json5 inlined: a device needs
 * node ≥ 20 and this file only (`node updraft-agent.mjs --once`). Returns the output path.
 */
export async function buildAgent(
  outfile = DEFAULT_AGENT_BUNDLE,
  entry = join(PROJECT_ROOT, 'agent', 'main.ts'),
): Promise<string> {
  await build({
    absWorkingDir: PROJECT_ROOT,
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
