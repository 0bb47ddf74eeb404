// The secure channel's front door: the names other layers and users may import. Everything
// else in src/channel (Noise states, framing, test hooks) is internal.
export { secureChannel, SecureChannel, type SecureChannelEvents } from './secure-channel.ts';
export type { SecureChannelOptions, ChannelLimits } from './options.ts';
export type { RemoteIdentity } from './identity-payload.ts';
export { HandshakeLimiter } from './handshake-limiter.ts';
export type { HandshakeLimiterOptions, ReleaseHandshake } from './handshake-limiter.ts';
export { listen, SecureListener, CLOSE_TIMEOUT_MS } from './listen.ts';
export type { ListenOptions, Refusal, Disconnect, SecureListenerEvents, CloseOptions } from './listen.ts';
export { dial } from './dial.ts';
export type { DialOptions } from './dial.ts';
export { replicate } from './replicate.ts';
export { tcpTransport } from './transport.ts';
export type { Transport, TransportServer, TransportStream } from './transport.ts';
export { MemoryNetwork } from './memory-transport.ts';
