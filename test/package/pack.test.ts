// The package as a user gets it: `npm pack`, install the tarball into a fresh app with its own
// package.json, then use it from plain node (ESM), type-check against it with a stock strict
// nodenext tsconfig, and run its `signet` command. Needs the npm registry (or npm's cache) for
// the package's dependencies, as any install does.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; devDependencies: Record<string, string> };

function run(cmd: string, args: string[], cwd: string, timeoutMs = 180_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('npm pack, install the tarball into a separate app, import it from node, type-check against it, run the bin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-pack-'));
  try {
    run('npm', ['pack', '--pack-destination', dir], root);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.is(tarball, `${pkg.name}-${pkg.version}.tgz`);
    const app = join(dir, 'app');
    run('mkdir', [app], dir);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    run('npm', ['install', join(dir, tarball!), `@types/node@${pkg.devDependencies['@types/node']}`, `typescript@${pkg.devDependencies.typescript}`, '--prefer-offline'], app);

    // what ships: the build and the bin, no sources or tests
    const shipped = readdirSync(join(app, 'node_modules', pkg.name));
    assert.ok(shipped.includes('dist') && shipped.includes('bin'), shipped.join(' '));
    assert.not.ok(shipped.includes('src') || shipped.includes('test'), shipped.join(' '));

    // plain node, ESM: the README example
    writeFileSync(join(app, 'app.mjs'), `
import { Identity, Model } from '${pkg.name}';
const alice = new Model({ identity: Identity.generate(), dataset: 'config' });
const bob = new Model({ identity: Identity.generate(), dataset: 'config' });
alice.set('replicas', 3);
const a = alice.createStream();
const b = bob.createStream();
a.pipe(b).pipe(a);
b.on('sync', () => { console.log(JSON.stringify({ replicas: bob.get('replicas'), id: bob.id.length })); alice.dispose(); bob.dispose(); });
`);
    const out = run('node', ['app.mjs'], app, 30_000);
    assert.equal(JSON.parse(out.stdout.trim()), { replicas: 3, id: 52 });

    // TypeScript with a stock strict nodenext config, library types checked too
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false } }));
    writeFileSync(join(app, 'app.ts'), `
import { Identity, Model, secureChannel, type Update } from '${pkg.name}';
const m = new Model({ identity: Identity.generate() });
const u: Update = m.set('k', 1);
const n: number = u.version;
m.on('invalid', (r) => void r.reason);
// @ts-expect-error a misspelt event name does not compile through the published types
m.on('chnage', () => {});
void secureChannel;
console.log(n);
`);
    run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app, 60_000);

    // the bin runs the compiled CLI
    const id = run(join(app, 'node_modules', '.bin', 'signet'), ['--help'], app, 30_000);
    assert.match(id.stdout, /usage: signet/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
