#!/usr/bin/env node
// The builder CLI `updraft` (cli/main.ts), run from TypeScript source through tsx.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../cli/main.ts');
await runCli(process.argv.slice(2));
