// `npm run bench [name...]`: runs every bench/*.ts but this one (or the named ones) one after
// another in its own process, so one bench's warm JIT or pool does not skew the next.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();
let failed = 0;
for (const file of files) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${file}`], { stdio: 'inherit' });
  if (res.status !== 0) {
    failed++;
    console.error(`bench ${file} failed (exit ${res.status ?? res.signal})`);
  }
}
process.exit(failed === 0 ? 0 : 1);
