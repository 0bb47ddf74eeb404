// The CLI's small pieces: durations, command-line values, what reaches a terminal, values as
// JSON, the data directory check, the rejection log budget, and the metrics endpoint's routes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity, Model, Node, open } from '../../src/index.ts';
import { parseDuration, parseValue } from '../../src/cli/control.ts';
import { printable, safeJson, valueToJson } from '../../src/cli/control-protocol.ts';
import { DaemonEvents, REJECT_LOG_BUDGET, REJECT_LOG_WINDOW_MS } from '../../src/cli/daemon-events.ts';
import { checkDataDir } from '../../src/cli/data-dir.ts';
import { UsageError } from '../../src/cli/io.ts';
import { metricsRegistry, serveMetrics } from '../../src/cli/metrics.ts';
import { ago, table } from '../../src/cli/inspect.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-units-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('parseDuration: a number and a unit, in whole milliseconds, at least 1 ms', () => {
  assert.is(parseDuration('500ms', '--ttl'), 500);
  assert.is(parseDuration('1ms', '--ttl'), 1);
  assert.is(parseDuration('30s', '--ttl'), 30_000);
  assert.is(parseDuration('1.5m', '--ttl'), 90_000);
  assert.is(parseDuration('2h', '--ttl'), 7_200_000);
  assert.is(parseDuration('7d', '--ttl'), 604_800_000);
  for (const bad of ['', '5', 's', '0ms', '0.4ms', '-1s', '1 s', '1S', '1w', '1e3s', '99999999999999999d', '1s2']) {
    assert.throws(() => parseDuration(bad, '--ttl'), (e: unknown) => e instanceof UsageError && e.message.startsWith('--ttl'), bad);
  }
});

test('parseValue: JSON if it parses, else the string; --string keeps the text', () => {
  assert.is(parseValue('42', false), 42);
  assert.is(parseValue('true', false), true);
  assert.is(parseValue('null', false), null);
  assert.is(parseValue('"42"', false), '42');
  assert.equal(parseValue('{"a":[1]}', false), { a: [1] });
  assert.is(parseValue('hello world', false), 'hello world');
  assert.is(parseValue('{not json', false), '{not json');
  assert.is(parseValue('', false), '');
  assert.is(parseValue('42', true), '42');
  assert.is(parseValue('{"a":1}', true), '{"a":1}');
});

test('printable and safeJson: control, C1, bidi and separator characters never reach the terminal raw', () => {
  assert.is(printable('plain text ✓'), 'plain text ✓');
  assert.is(printable(''), '""');
  for (const c of ['\n', '\r', '\u001b', '\u0000', '\u007f', '\u009b', '\u2028', '\u2029', '\u202e', '\u2066']) {
    const out = printable(`a${c}b`);
    assert.not.ok(out.includes(c), JSON.stringify(c));
    assert.is(JSON.parse(out), `a${c}b`, 'still valid JSON for the same text');
  }
  const json = safeJson({ k: '\u202egnp.exe', n: [1, null] });
  assert.not.ok(json.includes('\u202e'));
  assert.equal(JSON.parse(json), { k: '\u202egnp.exe', n: [1, null] });
});

test('valueToJson: bytes become {"$bytes": base64}, nested; prototype names stay ordinary keys', () => {
  const value = JSON.parse('{"__proto__": {"polluted": true}, "b": [1]}') as Record<string, unknown>;
  value['bytes'] = Uint8Array.of(1, 2, 255);
  const out = valueToJson(value as never) as Record<string, unknown>;
  assert.equal(JSON.parse(JSON.stringify(out)), JSON.parse('{"__proto__": {"polluted": true}, "b": [1], "bytes": {"$bytes": "AQL/"}}'));
  assert.is(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(valueToJson([Buffer.from('hi')]), [{ $bytes: 'aGk=' }]);
});

test('checkDataDir: a missing directory passes; group/world-writable or a file is refused with the path and the fix', () => {
  checkDataDir(join(dir, 'not-yet'));
  const d = join(dir, 'd');
  for (const [mode, ok] of [[0o700, true], [0o755, true], [0o750, true], [0o775, false], [0o757, false], [0o777, false]] as const) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, mode); // explicitly: mkdirSync's mode goes through the umask
    if (ok) checkDataDir(d);
    else assert.throws(() => checkDataDir(d), (e: unknown) => (e as { code: string }).code === 'ERR_DATA_DIR_PERMISSIONS' && (e as Error).message.includes(`chmod go-w ${d}`), mode.toString(8));
  }
  writeFileSync(join(dir, 'file'), '');
  assert.throws(() => checkDataDir(join(dir, 'file')), (e: unknown) => (e as { code: string }).code === 'ERR_DATA_DIR');
});

test(`the rejection log keeps to REJECT_LOG_BUDGET (${REJECT_LOG_BUDGET}) lines per window, then logs how many it suppressed`, () => {
  const lines: Array<[string, Record<string, unknown>]> = [];
  let now = 0;
  const events = new DaemonEvents((event, fields) => lines.push([event, fields]), () => now);
  const model = new EventEmitter();
  events.dataset('kv', model as never);
  const reject = (): void => void model.emit('invalid', { reason: 'bad-signature', detail: 'signature does not verify', update: undefined, origin: { name: 'kv@abcd' } });
  for (let i = 0; i < REJECT_LOG_BUDGET + 7; i++) reject();
  assert.is(lines.filter(([e]) => e === 'rejected').length, REJECT_LOG_BUDGET);
  assert.equal(lines[0], ['rejected', { dataset: 'kv', reason: 'bad-signature', detail: 'signature does not verify', source: null, version: null, from: 'kv@abcd' }]);
  assert.is(events.datasets.get('kv')!.rejected.get('bad-signature'), REJECT_LOG_BUDGET + 7, 'the counter stays exact');
  now += REJECT_LOG_WINDOW_MS;
  reject();
  assert.equal(lines.find(([e]) => e === 'rejected:suppressed'), ['rejected:suppressed', { count: 7, windowMs: REJECT_LOG_WINDOW_MS }]);
  assert.is(lines.at(-1)![0], 'rejected', 'a new window logs again');
  model.emit('equivocation', { source: 's', version: 3, updates: [{ hashHex: 'aa' }, { hashHex: 'bb' }] });
  assert.equal(lines.at(-1), ['equivocation', { dataset: 'kv', source: 's', version: 3, updates: ['aa', 'bb'] }]);
  events.flush();
});

test('metrics: a private registry per node (two in one process do not clash); only /metrics answers 200', async () => {
  const nodes = [new Node({ identity: Identity.generate() }), new Node({ identity: Identity.generate() })];
  const servers = [];
  try {
    for (const node of nodes) {
      const kv = node.dataset('kv', Model, { policy: open() });
      const events = new DaemonEvents(() => {});
      events.dataset('kv', kv);
      const registry = metricsRegistry({ node, datasets: new Map([['kv', kv]]), events, version: '0.0.0-test' });
      servers.push(await serveMetrics(registry, '127.0.0.1', 0));
      await kv.ready;
      kv.set('a', 1);
    }
    for (const [i, s] of servers.entries()) {
      const res = await fetch(`http://${s.address}/metrics?x=1`);
      assert.is(res.status, 200);
      const text = await res.text();
      assert.match(text, `signet_info{id="${nodes[i]!.id}",version="0.0.0-test"} 1`);
      assert.match(text, 'signet_updates_applied_total{dataset="kv",origin="local"} 1');
      assert.match(text, 'signet_dataset_keys{dataset="kv"} 1');
      assert.is((await fetch(`http://${s.address}/`)).status, 404);
      assert.is((await fetch(`http://${s.address}/metricsx`)).status, 404);
      assert.is((await fetch(`http://${s.address}/metrics`, { method: 'HEAD' })).status, 200);
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test('table and ago: aligned columns, short durations', () => {
  assert.is(table([['a', 'bb', 'c'], ['ddd', 'e', 'f']]), 'a    bb  c\nddd  e   f');
  assert.is(ago(null), '-');
  assert.is(ago(999), '999ms');
  assert.is(ago(59_000), '59s');
  assert.is(ago(60_000), '1m');
  assert.is(ago(7_200_000), '2h');
  assert.is(ago(172_800_000), '2d');
});

test.run();
