// Models a test makes, disposed after each test (uvu's default suite): the factory every
// model test shares.
import { test } from 'uvu';
import { Events, Model, type Identity } from '../../src/index.ts';
import { connect } from '../core/helpers.ts';

export type ModelTestOptions = Partial<ConstructorParameters<typeof Model>[0]>;
export type EventsTestOptions = Partial<ConstructorParameters<typeof Events>[0]>;

const made: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of made.splice(0)) m.dispose();
});

/** Disposes `m` after the current test; returns it. */
export function disposeAfter<T extends { dispose(): void }>(m: T): T {
  made.push(m);
  return m;
}

/** A Model of `id`, loaded, disposed after the test. */
export async function makeModel(id: Identity, options: ModelTestOptions = {}): Promise<Model> {
  const m = disposeAfter(new Model({ identity: id, ...options }));
  await m.ready;
  return m;
}

/** An Events of `id`, loaded, disposed after the test. */
export async function makeEvents(id: Identity, options: EventsTestOptions = {}): Promise<Events> {
  const e = disposeAfter(new Events({ identity: id, ...options }));
  await e.ready;
  return e;
}

/** One `tail: false` session between `a` and `b`; resolves with how many updates each received. */
export async function session(a: Model | Events, b: Model | Events): Promise<[number, number]> {
  const { sa, sb, closed } = connect(a, b, { a: { tail: false }, b: { tail: false } });
  await closed;
  return [sa.stats.received, sb.stats.received];
}
