// Typed events for signet's Duplex classes: the events every Node Duplex emits, and a base class
// that checks listener names and arguments against a map (a misspelt name does not compile).
import { Duplex, type Readable } from 'node:stream';

/** Events of a Node Duplex stream. */
export interface DuplexEvents {
  data: [chunk: Buffer];
  end: [];
  finish: [];
  close: [];
  drain: [];
  readable: [];
  pause: [];
  resume: [];
  error: [error: Error];
  pipe: [source: Readable];
  unpipe: [source: Readable];
}

type Listener<E, K extends keyof E> = (...args: E[K] & unknown[]) => void;

/** A Duplex whose `on`/`once`/`off`/`emit` are typed by the event map `E`. */
export abstract class TypedDuplex<E extends DuplexEvents> extends Duplex {
  override on<K extends keyof E & (string | symbol)>(event: K, listener: Listener<E, K>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once<K extends keyof E & (string | symbol)>(event: K, listener: Listener<E, K>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  override off<K extends keyof E & (string | symbol)>(event: K, listener: Listener<E, K>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }

  override emit<K extends keyof E & (string | symbol)>(event: K, ...args: E[K] & unknown[]): boolean {
    return super.emit(event, ...args);
  }
}
