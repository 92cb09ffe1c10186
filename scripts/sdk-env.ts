/**
 * The one place that silences the AWS SDK's Node version warning, for every entry point of this
 * repository: the CLI (cli/main.ts), the local cloud (local/main.ts), the bench (bench/run.ts and the
 * Lambda-like processes bench/bundle.ts starts) and the test runner (vitest.config.mts; its workers
 * and the processes they start inherit it, which is also all CI needs).
 *
 * Why: SDK v3 warns once per process on Node < 22 that its releases after January 2027 need Node 22.
 * Updraft supports Node ≥ 20 (package.json engines) and pins the SDK in package-lock.json, so the
 * warning is news for whoever upgrades the SDK, not for someone running `updraft`: there it would
 * land in the stderr that carries our one-line errors. Lambda runs Node 22 and never warns.
 * A value the user set is kept: `AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false` shows it.
 */
export const SDK_WARNING_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } as const;

for (const [name, value] of Object.entries(SDK_WARNING_ENV)) process.env[name] ??= value;
