#!/usr/bin/env node
// signet command entry: runs the TypeScript CLI through tsx so no build step is needed.
import { register } from 'tsx/esm/api';
register();
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
