// Catch-up progress on a terminal: bars drawn by cli-progress on a fake TTY, log lines above them,
// the bar gone once caught up or when the peer goes away; without a terminal, rate-limited lines.
import { EventEmitter } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonEvents, PROGRESS_LOG_MS } from '../../src/cli/daemon-events.ts';
import { ProgressBars, type TtyStream } from '../../src/cli/progress.ts';
import type { Node } from '../../src/mesh/node.ts';

/** A terminal that keeps what was written to it, escape sequences stripped. */
function fakeTty(): TtyStream & { text: () => string; raw: string[] } {
  const raw: string[] = [];
  return {
    isTTY: true, columns: 120, raw,
    write: (chunk: string) => (raw.push(chunk), true),
    // eslint-disable-next-line no-control-regex
    text: () => raw.join('').replace(/\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g, ''),
  };
}

const PEER = 'abcdefgh'.repeat(6) + 'abcd';
const progress = (sourcesDone: number, received: number, done = false) =>
  ({ peer: PEER, dataset: 'kv', sourcesDone, sourcesTotal: 10, received, done });

test('ProgressBars draws one bar per dataset and peer with sources done and updates received, and logs above it', () => {
  const tty = fakeTty();
  const bars = new ProgressBars(tty);
  try {
    bars.log('before any bar');
    assert.ok(tty.text().includes('before any bar\n'), 'a line with no bar shown is written at once');
    bars.update({ dataset: 'kv', peer: PEER, sourcesDone: 3, sourcesTotal: 10, received: 1234 });
    assert.is(bars.size, 1);
    bars.redraw();
    assert.match(tty.text(), /kv <- abcdefgh \[[^\]]+\] 3\/10 sources, 1234 updates/);
    bars.update({ dataset: 'kv', peer: PEER, sourcesDone: 7, sourcesTotal: 10, received: 5000 });
    bars.update({ dataset: 'other', peer: PEER, sourcesDone: 1, sourcesTotal: 2, received: 1 });
    assert.is(bars.size, 2, 'one bar per dataset and peer');
    bars.redraw();
    bars.log('while bars are shown');
    bars.finish('kv', PEER);
    assert.is(bars.size, 1);
    assert.match(tty.text(), /7\/10 sources, 5000 updates/, 'the bar moved before it was removed');
    assert.ok(tty.text().includes('while bars are shown\n'), 'a line logged while bars are shown is printed at the next redraw');
    bars.finish('kv', PEER); // twice: nothing
    bars.finish('other', PEER);
    assert.is(bars.size, 0);
  } finally {
    bars.stop();
  }
});

test('the daemon shows catch-up as a bar on a terminal (no catching-up lines) and still logs caught-up', () => {
  const tty = fakeTty();
  const bars = new ProgressBars(tty);
  const lines: string[] = [];
  try {
    const events = new DaemonEvents((event) => void lines.push(event), () => 0, bars);
    events.dataset('kv', new EventEmitter() as never);
    const node = new EventEmitter();
    events.node(node as unknown as Node);
    node.emit('dataset:progress', progress(2, 100));
    node.emit('dataset:progress', progress(5, 900));
    assert.is(bars.size, 1);
    assert.equal(lines, [], 'no catching-up lines while a bar shows it');
    node.emit('dataset:progress', progress(10, 2000, true));
    assert.is(bars.size, 0, 'the bar is gone once caught up');
    assert.equal(lines, ['caught-up']);
    node.emit('dataset:progress', progress(1, 10));
    assert.is(bars.size, 1);
    node.emit('peer:down', { id: PEER, address: '127.0.0.1:1' });
    assert.is(bars.size, 0, 'the bar of a peer that went away is removed');
  } finally {
    bars.stop();
  }
});

test('without a terminal the daemon logs catching-up lines at most once per PROGRESS_LOG_MS', () => {
  let now = 0;
  const lines: string[] = [];
  const events = new DaemonEvents((event) => void lines.push(event), () => now);
  const node = new EventEmitter();
  events.node(node as unknown as Node);
  node.emit('dataset:progress', progress(1, 10));
  now += PROGRESS_LOG_MS - 1;
  node.emit('dataset:progress', progress(2, 20));
  assert.equal(lines, ['catching-up']);
  now += 1;
  node.emit('dataset:progress', progress(3, 30));
  node.emit('dataset:progress', progress(10, 40, true));
  assert.equal(lines, ['catching-up', 'catching-up', 'caught-up']);
});

test.run();
