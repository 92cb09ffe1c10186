/** Vitest global setup: builds the console's page once, so no test process builds it concurrently. */
import { buildUi, DEFAULT_ASSETS_DIR } from '#console/assets.ts';

export default async function setup(): Promise<void> {
  await buildUi(DEFAULT_ASSETS_DIR);
}
