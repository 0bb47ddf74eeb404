// replication/: the stream protocol over any Duplex. Loading this module registers the
// stream factory that Scuttlebutt.createStream uses.
import { registerStreamFactory } from '../core/scuttlebutt.ts';
import { createStream } from './stream.ts';

registerStreamFactory(createStream);

export { ReplicationStream, createStream, DEFAULT_MTU, DEFAULT_MAX_LIVE_BYTES } from './stream.ts';
export type { StreamOptions, Header, StreamStats, Progress, ReplicationStreamEvents, CutReason } from './stream.ts';
export { PROTOCOL_VERSION } from './messages.ts';
