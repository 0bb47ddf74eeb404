// node.dataset(name, Model, { ordering }) reaches every replication stream of that dataset (and
// only of that one); a bad ordering is refused when the dataset is hosted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, MemoryNetwork, Model, Node, type StreamOptions } from '../../src/index.ts';
import { FAST, converged, networkKey } from './cluster.ts';

/** Records the `ordering` of every stream `model` creates. */
function spy(model: Model): Array<StreamOptions['ordering']> {
  const seen: Array<StreamOptions['ordering']> = [];
  const create = model.createStream.bind(model);
  model.createStream = (options?: StreamOptions) => {
    seen.push(options?.ordering);
    return create(options);
  };
  return seen;
}

test('the dataset ordering option is the ordering of its streams; another dataset keeps the default', async () => {
  const net = new MemoryNetwork();
  const a = new Node({ identity: Identity.generate(), networkKey, listen: '10.0.0.1:7420', transport: net.transport('10.0.0.1'), ...FAST });
  const b = new Node({ identity: Identity.generate(), networkKey, listen: '10.0.0.2:7420', transport: net.transport('10.0.0.2'), ...FAST, seeds: ['10.0.0.1:7420'] });
  try {
    const wide = a.dataset('wide', Model, { ordering: 'breadth' });
    const plain = a.dataset('plain', Model);
    assert.not.ok('ordering' in (wide as unknown as Record<string, unknown>), 'the option is the node\'s, not the model\'s');
    const seenWide = spy(wide);
    const seenPlain = spy(plain);
    const [bWide, bPlain] = [b.dataset('wide', Model), b.dataset('plain', Model)];
    wide.set('k', 1);
    plain.set('k', 2);
    await Promise.all([a.start(), b.start()]);
    await converged([bWide], 'k', 1);
    await converged([bPlain], 'k', 2);
    assert.ok(seenWide.length >= 1 && seenWide.every((o) => o === 'breadth'), JSON.stringify(seenWide));
    assert.ok(seenPlain.length >= 1 && seenPlain.every((o) => o === undefined), JSON.stringify(seenPlain));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('node.dataset refuses an unknown ordering, naming the option', async () => {
  const node = new Node({ identity: Identity.generate(), networkKey });
  try {
    assert.throws(() => node.dataset('x', Model, { ordering: 'random' as 'depth' }), (e: Error) => e instanceof RangeError && /"ordering"/.test(e.message));
    assert.throws(() => node.dataset('y', Model, { ordering: 7 as unknown as 'depth' }), (e: Error) => e instanceof TypeError && /"ordering"/.test(e.message));
  } finally {
    await node.stop();
  }
});

test.run();
