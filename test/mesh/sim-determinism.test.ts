// The mesh simulation (bench/mesh-sim.ts) depends on its seed alone: the same seed twice in one
// process gives the same digest (figures and connection graph). Its full-size check runs only in
// `npm run bench`; this small one runs with every `npm test`, so a change that lets real time,
// real randomness or a real thread (libsodium keys, the verification worker pool) into the
// virtual world is caught at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from '../../bench/mesh-sim.ts';

test('20 simulated nodes, seed 7, twice: the same digest; another seed: another digest', async () => {
  const options = { n: 20, warmupS: 2, steadyS: 2, writes: 1 };
  const first = await simulate({ ...options, seed: 7 });
  const again = await simulate({ ...options, seed: 7 });
  const other = await simulate({ ...options, seed: 8 });
  assert.is(again.digest, first.digest);
  assert.is.not(other.digest, first.digest);
  assert.is(process.env.SIGNET_NO_SODIUM, '1', 'the simulation runs on node:crypto alone');
});

test.run();
