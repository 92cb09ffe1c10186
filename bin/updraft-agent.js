#!/usr/bin/env node
// Development launcher: runs the TypeScript sources through tsx. Devices run the single-file build
// instead (`npm run build:agent` → dist/updraft-agent.mjs), which needs nothing but node.
import { register } from 'tsx/esm/api';

register();
await import('../agent/main.ts');
