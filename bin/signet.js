#!/usr/bin/env node
// signet command entry. An installed package runs its compiled CLI (dist/, built by
// `prepare`/`prepack`); a git checkout runs the TypeScript sources through tsx, so
// development never runs a stale build.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
let run;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ run } = await import(sources.href));
} else {
  ({ run } = await import(new URL('../dist/cli/main.js', import.meta.url).href));
}
process.exitCode = await run(process.argv.slice(2));
