// A tap on one direction of a replication stream: decodes every message going by, with the
// items of updates messages expanded to the envelopes they stand for (protocol 3 sends them
// compact), and passes the frames on unchanged, or drops those `allow` refuses.
import { Transform } from 'node:stream';
import { KeyTableReader } from '../../src/replication/compact.ts';
import { FrameDecoder, decodeMessage, type Message } from '../../src/replication/messages.ts';

export function frameTap(allow: (index: number, m: Message) => boolean = () => true, dataset = 'default') {
  const decoder = new FrameDecoder(1 << 24);
  const keys = new KeyTableReader(dataset);
  const seen: Message[] = [];
  const passed: Message[] = [];
  const tap = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const frames = decoder.push(chunk);
      if (typeof frames === 'string') return callback(new Error(frames));
      for (const f of frames) {
        const r = decodeMessage(f);
        if (!r.ok) return callback(new Error(r.reason));
        let m = r.message;
        if (m.type === 'updates') {
          const updates = m.updates.map((item) => keys.expand(item));
          const bad = updates.find((u): u is string => typeof u === 'string');
          if (bad !== undefined) return callback(new Error(bad));
          m = { type: 'updates', updates: updates as Uint8Array[] };
        }
        seen.push(m);
        if (allow(seen.length - 1, m)) {
          passed.push(m);
          const head = Buffer.alloc(4);
          head.writeUInt32BE(f.length, 0);
          this.push(Buffer.concat([head, f]));
        }
      }
      callback();
    },
  });
  return { tap, seen, passed };
}
