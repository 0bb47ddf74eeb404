// replicate(): one model over one secure channel, wired so that nothing leaks or escapes:
// the hello is bound to the id the channel proved, and the two lifetimes end together.
import type { AnyScuttlebutt } from '../core/scuttlebutt.ts';
import type { ReplicationStream, StreamOptions } from '../replication/stream.ts';
import type { SecureChannel } from './secure-channel.ts';

/**
 * Replicates `model` with the peer at the other end of `channel`: a replication stream piped
 * both ways, created with `expectedPeer` = the id the channel proved (a hello claiming another
 * id is cut `wrong-peer`). When the channel closes (the peer left, was killed, or failed), the
 * stream is destroyed; when the stream is cut (the peer broke the protocol) or ends, the
 * channel is closed. So a long-running listener keeps nothing alive for a dead peer.
 * @throws RangeError / TypeError for bad stream options (see {@link StreamOptions}).
 */
export function replicate(model: AnyScuttlebutt, channel: SecureChannel, options: StreamOptions = {}): ReplicationStream {
  const stream = model.createStream({ ...options, expectedPeer: channel.remote.id });
  stream.pipe(channel).pipe(stream);
  channel.once('close', () => stream.destroy());
  stream.once('cut', () => channel.destroy());
  stream.once('close', () => {
    if (!channel.destroyed) channel.end(); // the authenticated close frame, then the socket
  });
  return stream;
}
