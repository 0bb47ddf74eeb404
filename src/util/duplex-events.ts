// The events every Node Duplex emits, as a typed map that signet's Duplex classes extend with
// their own (so a misspelt event name on a stream or channel does not compile).
import type { Readable } from 'node:stream';

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
