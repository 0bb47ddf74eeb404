// The control socket under hostile and clumsy clients, in process: garbage and limit-sized
// lines, bytes written one at a time, too many connections, half-closed and vanishing clients,
// slow watchers, and a close that ends every watch. The daemon must answer or cut, never crash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteError } from '../../src/index.ts';
import { MAX_CONTROL_LINE_BYTES, type ControlRequest, type WireChange } from '../../src/cli/control-protocol.ts';
import { ControlServer, type ControlHandlers } from '../../src/cli/control-server.ts';
import { UsageError } from '../../src/cli/io.ts';
import { deadline } from '../helpers/streams.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-ctl-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const socketPath = (): string => join(dir, `c${++n}.sock`);

/** Handlers that echo, fail on demand, and keep the watch's emitter for the test to drive. */
function fakeHandlers() {
  const watchers = new Set<(c: WireChange) => void>();
  const handlers: ControlHandlers = {
    async request(r: ControlRequest) {
      if (r.key === 'usage') throw new UsageError('bad usage');
      if (r.key === 'write') throw new WriteError('dataset kv is read-only');
      if (r.key === 'bug') throw new Error('a bug');
      if (r.key === 'string') throw 'not even an Error'; // eslint-disable-line no-throw-literal
      // 'slow' answers after a few turns of the event loop (the requests behind it have arrived
      // by then), so answers must be kept in order by the server, not by luck.
      if (r.key === 'slow') for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      return { op: r.op, key: r.key ?? null };
    },
    async watch(_r, emit) {
      watchers.add(emit);
      emit(change('before-the-answer'));
      return { result: { watching: true }, stop: () => watchers.delete(emit) };
    },
  };
  return { handlers, watchers };
}
const change = (key: string, value: unknown = 1): WireChange => ({ dataset: 'kv', op: 'set', key, value, source: 's', version: 1 });

/** A raw client: write bytes, read answer lines (with a deadline), know when the daemon closed it. */
async function client(path: string) {
  const socket: Socket = connect(path);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buffered = '';
  socket.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket, lines, closed,
    send: (text: string | Buffer) => socket.write(text),
    /** The next answer line (in order). */
    async next(what = 'an answer'): Promise<Record<string, unknown>> {
      while (lines.length === 0) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        await deadline(Promise.race([more, closed.then(() => { throw new Error(`closed before ${what}`); })]), what, 10_000);
      }
      return lines.shift()!;
    },
  };
}

test('answers in order, echoing ids; the socket is created with mode 0600', async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers);
  try {
    assert.is(statSync(path).mode & 0o777, 0o600);
    const c = await client(path);
    c.send('{"id":1,"op":"get","key":"slow"}\n{"id":"two","op":"status"}\n{"id":{"x":1},"op":"peers"}\n');
    assert.equal(await c.next(), { id: 1, ok: true, result: { op: 'get', key: 'slow' } });
    assert.equal(await c.next(), { id: 'two', ok: true, result: { op: 'status', key: null } });
    assert.equal(await c.next(), { id: null, ok: true, result: { op: 'peers', key: null } });
    c.socket.destroy();
  } finally {
    await server.close();
  }
  assert.not.ok(existsSync(path), 'close() removes the socket file');
});

test('garbage lines get an error answer each and the connection goes on; errors carry their codes', async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers);
  try {
    const c = await client(path);
    const garbage = ['not json', '[1,2]', '42', 'null', '"op"', '{"op":"explode"}', '{"op":{"toString":"get"}}', '{}', '{"__proto__":{"op":"get"}}', '\u0000\u0001', '{"op":"get"'];
    for (const g of garbage) c.send(`${g}\n`);
    c.send(Buffer.from([0xff, 0xfe, 0x0a])); // not UTF-8
    c.send('\n\n   \n'); // empty lines: nothing to answer
    for (const g of [...garbage, 'bytes']) {
      const r = await c.next(g);
      assert.is(r['ok'], false, g);
      assert.is((r['error'] as { code: string }).code, 'ERR_USAGE', g);
    }
    const codes: Record<string, string> = { usage: 'ERR_USAGE', write: 'ERR_WRITE', bug: 'ERR_INTERNAL', string: 'ERR_INTERNAL' };
    for (const [key, code] of Object.entries(codes)) {
      c.send(`${JSON.stringify({ id: key, op: 'get', key })}\n`);
      const r = await c.next(key);
      assert.equal([r['id'], r['ok'], (r['error'] as { code: string }).code], [key, false, code]);
    }
    c.send('{"id":9,"op":"get","key":"still here"}\n');
    assert.equal((await c.next())['result'], { op: 'get', key: 'still here' });
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test('a request written one byte at a time is answered', async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers);
  try {
    const c = await client(path);
    for (const byte of Buffer.from('{"id":7,"op":"keys","key":"ünïcode ✓"}\n')) {
      c.send(Buffer.of(byte));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(await c.next(), { id: 7, ok: true, result: { op: 'keys', key: 'ünïcode ✓' } });
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test(`MAX_CONTROL_LINE_BYTES (${MAX_CONTROL_LINE_BYTES}): a line of the limit is read; one byte more closes that connection with ERR_LINE_TOO_LONG, others go on`, async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers);
  try {
    const request = (bytes: number): string => {
      const head = '{"op":"get","key":"';
      return `${head}${'k'.repeat(bytes - head.length - 2)}"}`;
    };
    assert.is(Buffer.byteLength(request(MAX_CONTROL_LINE_BYTES)), MAX_CONTROL_LINE_BYTES);
    const ok = await client(path);
    ok.send(`${request(MAX_CONTROL_LINE_BYTES)}\n`);
    assert.is((await ok.next())['ok'], true);
    const over = await client(path);
    over.send(request(MAX_CONTROL_LINE_BYTES + 1)); // no newline needed: the bound is on what is buffered
    const r = await over.next();
    assert.is((r['error'] as { code: string }).code, 'ERR_LINE_TOO_LONG');
    await deadline(over.closed, 'the over-long connection to close', 10_000);
    ok.send('{"id":2,"op":"status"}\n');
    assert.is((await ok.next())['id'], 2, 'the other connection is unaffected');
    ok.socket.destroy();
  } finally {
    await server.close();
  }
});

test('past maxConnections a new connection gets ERR_BUSY and is closed; a freed slot is used again', async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers, { maxConnections: 2 });
  try {
    const c1 = await client(path);
    const c2 = await client(path);
    c1.send('{"id":1,"op":"status"}\n');
    await c1.next(); // both are registered by now
    const c3 = await client(path);
    assert.is(((await c3.next())['error'] as { code: string }).code, 'ERR_BUSY');
    await deadline(c3.closed, 'the third connection to close', 10_000);
    c1.socket.destroy();
    await c1.closed;
    await deadline((async () => { while (server.connections > 1) await new Promise((resolve) => setImmediate(resolve)); })(), 'the slot to free', 10_000);
    const c4 = await client(path);
    c4.send('{"id":4,"op":"status"}\n');
    assert.is((await c4.next())['ok'], true);
    c2.socket.destroy();
    c4.socket.destroy();
  } finally {
    await server.close();
  }
});

test('a client that half-closes after its requests still gets every answer; one that vanishes mid-request costs nothing', async () => {
  const path = socketPath();
  const server = await ControlServer.listen(path, fakeHandlers().handlers);
  try {
    const c = await client(path);
    c.socket.end('{"id":1,"op":"get","key":"slow"}\n{"id":2,"op":"status"}\n');
    assert.is((await c.next())['id'], 1);
    assert.is((await c.next())['id'], 2);
    await deadline(c.closed, 'the daemon to end the half-closed connection', 10_000);
    const gone = await client(path);
    gone.send('{"id":1,"op":"get","key":"slow"}\n');
    gone.socket.destroy();
    await gone.closed;
    const after = await client(path);
    after.send('{"id":3,"op":"status"}\n');
    assert.is((await after.next())['id'], 3);
    after.socket.destroy();
  } finally {
    await server.close();
  }
});

test('watch: the answer comes first (changes from before it wait), then changes; other lines are ignored; close() ends it with ERR_STOPPING', async () => {
  const path = socketPath();
  const { handlers, watchers } = fakeHandlers();
  const server = await ControlServer.listen(path, handlers);
  let closed = false;
  try {
    const c = await client(path);
    c.send('{"id":5,"op":"watch"}\n');
    assert.equal(await c.next(), { id: 5, ok: true, result: { watching: true } });
    assert.equal(await c.next(), { id: 5, event: 'change', change: change('before-the-answer') });
    c.send('{"id":6,"op":"status"}\n');
    for (const emit of watchers) emit(change('later', { deep: [1, 'two'] }));
    assert.equal(await c.next(), { id: 5, event: 'change', change: change('later', { deep: [1, 'two'] }) });
    await server.close();
    closed = true;
    const end = await c.next();
    assert.equal(end, { id: 5, event: 'end', error: { code: 'ERR_STOPPING', message: 'the node is stopping' } });
    await deadline(c.closed, 'the watch connection to close', 10_000);
    assert.is(watchers.size, 0, 'the watch stopped listening');
  } finally {
    if (!closed) await server.close();
  }
});

test('a watch client that stops reading is cut off with ERR_SLOW_CONSUMER once maxOutputBytes wait for it; its watch stops', async () => {
  const path = socketPath();
  const { handlers, watchers } = fakeHandlers();
  const server = await ControlServer.listen(path, handlers, { maxOutputBytes: 64 * 1024 });
  try {
    const c = await client(path);
    c.send('{"id":1,"op":"watch"}\n');
    await c.next();
    c.socket.pause(); // reads nothing more
    const big = 'x'.repeat(4096);
    for (let i = 0; i < 2000 && watchers.size > 0; i++) for (const emit of [...watchers]) emit(change(`k${i}`, big));
    assert.is(watchers.size, 0, 'the watch was stopped');
    c.socket.resume();
    await deadline(c.closed, 'the slow watcher to be closed', 10_000);
    const last = c.lines.at(-1)!;
    assert.equal(last['event'], 'end');
    assert.is((last['error'] as { code: string }).code, 'ERR_SLOW_CONSUMER');
  } finally {
    await server.close();
  }
});

test('listen: replaces a stale socket file, refuses a path that is not a socket, and a path too long for a Unix socket', async () => {
  const stale = socketPath();
  // What a daemon killed with SIGKILL leaves: a socket file nobody listens on.
  spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.ok(statSync(stale).isSocket(), 'a stale socket file is left');
  writeFileSync(join(dir, 'plain'), 'x');
  const second = await ControlServer.listen(stale, fakeHandlers().handlers);
  const c = await client(stale);
  c.send('{"id":1,"op":"status"}\n');
  assert.is((await c.next())['ok'], true);
  c.socket.destroy();
  await second.close();
  const file = join(dir, 'plain');
  try {
    await ControlServer.listen(file, fakeHandlers().handlers);
    assert.unreachable('a regular file is not replaced');
  } catch (err) {
    assert.is((err as { code: string }).code, 'ERR_CONTROL_SOCKET');
    assert.match((err as Error).message, 'is not a socket');
  }
  try {
    await ControlServer.listen(join(dir, 'd'.repeat(120), 'control.sock'), fakeHandlers().handlers);
    assert.unreachable('too long');
  } catch (err) {
    assert.match((err as Error).message, 'longer than the 107 bytes');
  }
});

test.run();
