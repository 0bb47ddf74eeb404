// README's examples, run as written: the TypeScript blocks of "Use it", in order, as one
// module importing this checkout instead of the published package (and, for the network
// example, a port the system picks on 127.0.0.1 instead of 7420).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The ```ts blocks between two headings. */
function blocks(from: string, to: string): string[] {
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to, readme.indexOf(from)));
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('"Use it": the examples run, replicate in memory and over the secure channel, and exit cleanly', () => {
  const code = blocks('## Use it', '\n## ').join('\n');
  assert.ok(code.includes('listen(') && code.includes('replicate('), 'both examples found');
  const dir = mkdtempSync(join(tmpdir(), 'signet-readme-'));
  try {
    const index = join(root, 'src', 'index.ts');
    // one module: imports first, then the code; the package name points at this checkout
    const imports = [...new Set([...code.matchAll(/^import .*$/gm)].map((m) => m[0].replace(/'signet-sync'/, JSON.stringify(index))))];
    const body = code.replace(/^import .*$/gm, '').replaceAll('port: 7420,', 'port: PORT,');
    const port = "const PORT_OF = (l: { address(): { port: number } }) => l.address().port;\nlet PORT = 0;\n";
    const wired = body.replace(/(const listener = await listen\(\{[\s\S]*?\}\);)/, '$1\nPORT = PORT_OF(listener);');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'example.ts'), `${imports.join('\n')}\n${port}${wired}`);
    // run from the temporary directory, so the example writes nothing into this checkout
    const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    const r = spawnSync(process.execPath, ['--import', tsx, join(dir, 'example.ts')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^3$/m, 'bob reads 3 in memory');
    assert.match(r.stdout, /over the network, bob sees replicas = 3/);
    assert.match(r.stdout, /closed: cleanly/);
    assert.match(r.stdout, /member learned from its own signed record: true/);
    assert.match(r.stdout, /the member reads mesh/);
    assert.match(r.stdout, /same node after a restart: true 32/);
    assert.is(r.stderr.trim(), '', 'no warnings, nothing refused');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
