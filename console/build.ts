/** `npm run build:console`: bundles the page into console/dist and prints its size beside the budget. */
import { BUNDLE_BUDGET_BYTES, buildUi, bundleSize, DEFAULT_ASSETS_DIR } from './assets.ts';

await buildUi(DEFAULT_ASSETS_DIR);
const size = bundleSize(DEFAULT_ASSETS_DIR);
console.log(
  `console: ${(size / 1024).toFixed(1)} KiB of JS+CSS gzipped (budget ${BUNDLE_BUDGET_BYTES / 1024} KiB) in ${DEFAULT_ASSETS_DIR}`,
);
if (size > BUNDLE_BUDGET_BYTES) process.exit(1);
