// The multiplexer: every dataset two nodes share, over their one secure channel. Each side
// OPENs the datasets it hosts; a dataset both sides accepted becomes a session carrying one
// replication stream each way, under a credit window, so a slow dataset never stalls another.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { NodeId } from '../identity/node-id.ts';
import { MUX_MAX_DATA_BYTES, MUX_MAX_OPENS, MUX_WINDOW_BYTES } from '../limits.ts';
import {
  MUX_VERSION, decodeMuxMessage, encodeAccept, encodeClose, encodeCredit, encodeData, encodeEnd, encodeHello, encodeOpen,
  encodeRefuse, type MuxMessage, type OpenInfo,
} from './mux-messages.ts';

/** Options of a {@link Mux}. */
export interface MuxOptions {
  localId: NodeId;
  /** The id the secure channel proved: the peer's hello must name it. */
  remoteId: NodeId;
  /** Bytes the peer may send on one session before we grant more. Default MUX_WINDOW_BYTES. */
  window?: number;
  /** Decides on a peer's OPEN: null accepts it, a short ASCII reason refuses it (sent to the peer). */
  decide: (info: OpenInfo) => string | null;
}

/** Events of a {@link Mux}. There is no `'error'`: a peer's fault is a `'violation'`. */
export interface MuxEvents {
  /** The peer's hello arrived and was accepted (`ready` is now true). */
  ready: [];
  /** Both sides accepted a dataset: attach a replication stream to the session. */
  session: [session: MuxSession];
  /** The peer refused a dataset we opened (`'not-hosted'`, `'policy-mismatch'`...). */
  refused: [name: string, reason: string];
  /** The peer broke the multiplexer protocol; the caller closes the connection. Emitted once. */
  violation: [reason: string];
}

/** One side of an OPEN: our channel number for a dataset, or the peer's. */
interface Channel {
  number: number;
  info: OpenInfo;
  state: 'pending' | 'accepted' | 'refused';
  session: MuxSession | null;
}

/** Least credit worth a CREDIT message: a quarter of the window. */
const CREDIT_FRACTION = 4;
/** Peer DATA that waits for a busy stream is copied into blocks of this size: a peer that sends
 *  its window a byte per message would otherwise make us hold a Buffer (and a queued write) per
 *  byte, some 270 bytes of heap each: 69 MiB for one 256 KiB window, measured. */
const INBOX_BLOCK_BYTES = 16 * 1024;

/**
 * A multiplexer over one message Duplex (a SecureChannel: one write is one message). It reads
 * every message the peer sends as soon as it arrives; what a session's stream has not yet
 * consumed is bounded by the window, and a peer that sends beyond its credit, on a channel
 * nobody accepted, or anything malformed, is reported as a violation.
 */
export class Mux extends EventEmitter<MuxEvents> {
  readonly window: number;
  private readonly channel: Duplex;
  private readonly options: MuxOptions;
  private readonly local = new Map<number, Channel>();
  private readonly localByName = new Map<string, Channel>();
  private readonly remote = new Map<number, Channel>();
  private readonly remoteByName = new Map<string, Channel>();
  private readonly sessions: MuxSession[] = [];
  private nextChannel = 0;
  private peerWindow = 0;
  private helloReceived = false;
  private blocked = false;
  private flushing = false;
  private rotate = 0;
  private violated = false;
  private closed = false;
  private readonly onMessage = (message: Buffer): void => this.receive(message);
  /** Multiplexer bytes received and sent on this connection (inside the encryption). */
  bytesIn = 0;
  bytesOut = 0;
  private readonly onDrain = (): void => {
    this.blocked = false;
    this.flush();
  };
  private readonly onClose = (): void => this.channelClosed();

  /** @throws RangeError for a window the peer would refuse (under MUX_MAX_DATA_BYTES) or a u32 cannot carry. */
  constructor(channel: Duplex, options: MuxOptions) {
    super();
    const window = options.window ?? MUX_WINDOW_BYTES;
    if (!Number.isInteger(window) || window < MUX_MAX_DATA_BYTES || window > 0xffffffff) {
      throw new RangeError(`"window" expected an integer from MUX_MAX_DATA_BYTES (${MUX_MAX_DATA_BYTES}) to 2^32-1, got ${window}`);
    }
    this.channel = channel;
    this.options = options;
    this.window = window;
    channel.on('data', this.onMessage);
    channel.on('drain', this.onDrain);
    channel.once('close', this.onClose);
    this.send(encodeHello(this.window, options.localId));
  }

  /** True once the peer's hello arrived. */
  get ready(): boolean {
    return this.helloReceived;
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.sessions.length;
  }

  /** Names of the datasets with a session now. */
  sessionNames(): string[] {
    return this.sessions.map((s) => s.name);
  }

  /**
   * Offers a dataset we host. A second offer of the same name does nothing.
   * @throws RangeError for an `info` the peer would refuse (see encodeOpen).
   */
  open(info: OpenInfo): void {
    if (this.closed || this.localByName.has(info.name)) return;
    if (this.nextChannel > 0xffff) return; // 65,536 datasets offered on one connection: no room for more
    const message = encodeOpen(this.nextChannel, info);
    const channel: Channel = { number: this.nextChannel++, info, state: 'pending', session: null };
    this.local.set(channel.number, channel);
    this.localByName.set(info.name, channel);
    this.send(message);
  }

  /** Closes every session now (their streams are destroyed, also those finishing a clean end, and
   *  what the peer sent that they have not taken yet is dropped); the channel is the caller's.
   *  Once the channel is gone it does what its 'close' does (see channelClosed), whoever calls first. */
  destroy(): void {
    if (this.closed) return;
    if (this.channel.destroyed) return this.channelClosed();
    this.detach();
    this.sessions.length = 0;
    for (const channel of this.local.values()) channel.session?.destroyStream();
  }

  /**
   * The channel closed (the peer's close frame, or a hang-up): nothing more is sent or received,
   * but what the peer sent before is not dropped. Every session ends as if the peer had sent END
   * then CLOSE: its stream takes the DATA that arrived (authenticated by the channel; each update
   * in it is verified by the stream like any other), its writable side ends, and only then is it
   * destroyed. A node that stops sends its signed leaving record and then its close frame; both
   * often arrive in one read while our stream is still busy with the write before (its callback
   * comes after a verification, or at least a microtask, later than the channel's close, which
   * runs on ticks), so the record waits in the session's inbox: destroying the stream here lost it.
   */
  private channelClosed(): void {
    if (this.closed) return;
    this.detach();
    for (const session of this.sessions.splice(0)) session.connectionClosed();
  }

  private detach(): void {
    this.closed = true;
    this.channel.off('data', this.onMessage);
    this.channel.off('drain', this.onDrain);
    this.channel.off('close', this.onClose);
  }

  // ---- receiving ----------------------------------------------------------------------------

  private receive(bytes: Buffer): void {
    this.bytesIn += bytes.length;
    if (this.closed || this.violated) return;
    const m = decodeMuxMessage(bytes);
    if (typeof m === 'string') return this.violation(m);
    if (!this.helloReceived && m.type !== 'hello') return this.violation(`a ${m.type} before the hello`);
    switch (m.type) {
      case 'hello': return this.hello(m);
      case 'open': return this.peerOpen(m.channel, m.info);
      case 'accept':
      case 'refuse': return this.answer(m.channel, m.type === 'refuse' ? m.reason : null);
      case 'data': return this.data(m.channel, m.payload);
      case 'credit': return this.credit(m.channel, m.bytes);
      case 'end':
      case 'close': return this.peerEnd(m.channel, m.type === 'close');
    }
  }

  private hello(m: Extract<MuxMessage, { type: 'hello' }>): void {
    if (this.helloReceived) return this.violation('a second hello');
    if (m.version !== MUX_VERSION) return this.violation(`mux version ${m.version} (we speak ${MUX_VERSION})`);
    if (m.id !== this.options.remoteId) return this.violation('the hello names another node than the channel proved');
    if (m.window < MUX_MAX_DATA_BYTES) return this.violation(`a window of ${m.window} bytes`);
    this.peerWindow = m.window;
    this.helloReceived = true;
    this.emit('ready');
  }

  private peerOpen(number: number, info: OpenInfo): void {
    if (this.remote.has(number)) return this.violation(`channel ${number} opened twice`);
    if (this.remote.size >= MUX_MAX_OPENS) return this.violation(`more than ${MUX_MAX_OPENS} datasets opened`);
    const channel: Channel = { number, info, state: 'refused', session: null };
    this.remote.set(number, channel);
    const reason = this.remoteByName.has(info.name) ? 'already-open' : this.options.decide(info);
    if (reason !== null) return this.send(encodeRefuse(number, reason));
    channel.state = 'accepted';
    this.remoteByName.set(info.name, channel);
    this.send(encodeAccept(number));
    this.tryStart(info.name);
  }

  private answer(number: number, refusal: string | null): void {
    const channel = this.local.get(number);
    if (!channel || channel.state !== 'pending') return this.violation(`an answer for channel ${number}, which is not waiting for one`);
    if (refusal !== null) {
      channel.state = 'refused';
      this.emit('refused', channel.info.name, refusal);
      return;
    }
    channel.state = 'accepted';
    this.tryStart(channel.info.name);
  }

  private data(number: number, payload: Buffer): void {
    const session = this.remote.get(number)?.session;
    if (!session) return this.violation(`DATA on channel ${number}, which has no session`);
    const fault = session.receive(payload);
    if (fault !== null) this.violation(`${fault} on channel ${number}`);
  }

  private credit(number: number, bytes: number): void {
    const session = this.local.get(number)?.session;
    if (!session) return this.violation(`CREDIT for channel ${number}, which has no session`);
    if (!session.grant(bytes)) return this.violation(`credit beyond 2^32 on channel ${number}`);
    this.flush();
  }

  private peerEnd(number: number, close: boolean): void {
    const session = this.remote.get(number)?.session;
    if (!session) return this.violation(`${close ? 'CLOSE' : 'END'} on channel ${number}, which has no session`);
    const fault = close ? session.peerClosed() : session.peerEnded();
    if (fault !== null) this.violation(`${fault} on channel ${number}`);
  }

  private tryStart(name: string): void {
    const mine = this.localByName.get(name);
    const theirs = this.remoteByName.get(name);
    if (mine?.state !== 'accepted' || theirs?.state !== 'accepted' || mine.session || theirs.session) return;
    const session = new MuxSession(this, name, mine.info, theirs.info, mine.number, theirs.number, this.peerWindow);
    mine.session = theirs.session = session;
    this.sessions.push(session);
    this.emit('session', session);
  }

  private violation(reason: string): void {
    if (this.violated || this.closed) return;
    this.violated = true;
    this.emit('violation', reason);
  }

  // ---- sending ------------------------------------------------------------------------------

  /** @internal True while the channel refuses writes: DATA and CREDIT wait for 'drain', so a
   *  peer that does not read what we send gets no credit to send more. */
  get backpressured(): boolean {
    return this.blocked;
  }

  /** @internal Writes one message; DATA and CREDIT wait for 'drain' (see flush), the others never do. */
  send(message: Buffer): void {
    if (this.closed || this.channel.destroyed || this.channel.writableEnded) return;
    this.bytesOut += message.length;
    if (!this.channel.write(message)) this.blocked = true;
  }

  /** @internal Sends queued DATA, one piece per session in turn, while the channel takes it. */
  flush(): void {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    try {
      let progress = true;
      while (progress && !this.blocked && !this.closed) {
        progress = false;
        // a snapshot: a session whose last piece goes out may finish (END, CLOSE) and leave the list
        const round = this.sessions.slice();
        const n = round.length;
        for (let i = 0; i < n && !this.blocked; i++) {
          if (round[(this.rotate + i) % n]!.sendPiece()) progress = true;
        }
        this.rotate = n === 0 ? 0 : (this.rotate + 1) % n;
      }
    } finally {
      this.flushing = false;
    }
    for (const session of this.sessions) {
      session.grantCredit();
      session.resumeIfRoom();
    }
  }

  /** @internal A session ended: forget it (its channel numbers stay used). */
  removeSession(session: MuxSession): void {
    const i = this.sessions.indexOf(session);
    if (i >= 0) this.sessions.splice(i, 1);
  }
}

/**
 * One dataset shared over a mux: the bytes of our replication stream go out as DATA under the
 * peer's credit; the peer's DATA is written into our stream, one write at a time (what waits is
 * copied into blocks), and credit is granted back as the stream consumes it (its write
 * callback), so what we hold for the peer never passes the window.
 *
 * Ends: END says "no more DATA from me" (our stream's writable side ends once it has taken
 * everything); CLOSE says "I am gone" (we stop sending and the stream is destroyed). A stream
 * that ended cleanly and then closed still sends what it had produced, then END, then CLOSE; and
 * a CLOSE after the peer's END lets our stream take what the peer sent before it is destroyed. The
 * connection closing is END then CLOSE for every session: what arrived is taken, nothing is lost.
 */
export class MuxSession {
  /** The dataset name. */
  readonly name: string;
  /** What we said about our copy, and what the peer said about its. */
  readonly local: OpenInfo;
  readonly remote: OpenInfo;
  private readonly mux: Mux;
  private readonly localChannel: number;
  private readonly remoteChannel: number;
  private stream: Duplex | null = null;
  // sending: our stream's output, under the peer's credit
  private readonly out: Buffer[] = [];
  private outOffset = 0;
  private credit: number;
  private endPending = false;
  private sentEnd = false;
  private sentClose = false;
  private streamClosed = false;
  // receiving: the peer's DATA, into our stream
  /** Blocks of peer DATA waiting for the stream; the last one is filled up to `inboxFill`. */
  private readonly inbox: Buffer[] = [];
  private inboxFill = 0;
  /** A write into the stream has not called back yet. */
  private writing = false;
  /** Bytes the peer sent that we have not credited back yet (at most mux.window). */
  private outstanding = 0;
  /** Of those, bytes our stream has consumed. */
  private consumed = 0;
  private peerEnd = false;
  private peerClose = false;
  private done = false;

  /** @internal Created by the Mux. */
  constructor(mux: Mux, name: string, local: OpenInfo, remote: OpenInfo, localChannel: number, remoteChannel: number, credit: number) {
    this.mux = mux;
    this.name = name;
    this.local = local;
    this.remote = remote;
    this.localChannel = localChannel;
    this.remoteChannel = remoteChannel;
    this.credit = credit;
  }

  /** Bytes the peer sent on this session that our stream has not consumed yet: at most the window. */
  get buffered(): number {
    return this.outstanding - this.consumed;
  }

  /** Connects a stream (a replication stream): its output goes to the peer, the peer's into it.
   *  When the stream closes the session closes; when the connection closes the stream takes what
   *  arrived and is destroyed once its writable side finished.
   *  @throws Error if the session already carries a stream. */
  attach(stream: Duplex): void {
    if (this.stream) throw new Error('a session carries one stream');
    this.stream = stream;
    stream.on('error', () => {}); // its reason is its own (a replication stream is cut without one)
    stream.on('data', (chunk: Buffer) => {
      if (this.sentClose) return; // the peer is gone: nobody reads this
      this.out.push(chunk);
      stream.pause();
      this.mux.flush();
    });
    stream.once('end', () => {
      this.endPending = true;
      this.mux.flush();
      this.sendEndIfDrained();
    });
    stream.once('close', () => this.streamGone());
    if (this.done) return void stream.destroy();
    this.pumpInbox(); // what arrived before attach(), and an END
  }

  /** @internal Peer DATA: null if taken (or dropped: in flight when we closed), else the fault. */
  receive(payload: Buffer): string | null {
    if (this.peerEnd || this.peerClose) return 'DATA after the peer\'s END or CLOSE';
    if (this.sentClose) return null;
    if (this.outstanding + payload.length > this.mux.window) return 'DATA beyond the credit window';
    this.outstanding += payload.length;
    if (this.stream && !this.writing && this.inbox.length === 0) this.write(payload);
    else this.hold(payload);
    return null;
  }

  /** Copies a payload to the end of the inbox (a view would keep a Buffer per message). */
  private hold(payload: Buffer): void {
    for (let at = 0; at < payload.length; ) {
      let block = this.inbox[this.inbox.length - 1];
      if (block === undefined || this.inboxFill === block.length) {
        block = Buffer.allocUnsafe(INBOX_BLOCK_BYTES);
        this.inbox.push(block);
        this.inboxFill = 0;
      }
      const n = payload.copy(block, this.inboxFill, at);
      this.inboxFill += n;
      at += n;
    }
  }

  /** Writes the next inbox block into the stream if none is in flight; ends it after the peer's END. */
  private pumpInbox(): void {
    if (!this.stream || this.writing) return;
    const block = this.inbox.shift();
    if (block !== undefined) {
      const chunk = this.inbox.length === 0 ? block.subarray(0, this.inboxFill) : block;
      if (this.inbox.length === 0) this.inboxFill = 0;
      return this.write(chunk);
    }
    if (this.peerEnd && !this.stream.writableEnded && !this.stream.destroyed) this.stream.end();
  }

  private write(chunk: Buffer): void {
    const stream = this.stream!;
    if (stream.destroyed || stream.writableEnded) return; // closing: dropped
    this.writing = true;
    stream.write(chunk, () => {
      this.writing = false;
      this.consumed += chunk.length;
      this.grantCredit();
      this.pumpInbox();
    });
  }

  /** @internal Grants the peer what our stream consumed, once that is worth a CREDIT and the
   *  channel takes writes (else on 'drain', from flush). */
  grantCredit(): void {
    if (this.sentClose || this.mux.backpressured || this.consumed * CREDIT_FRACTION < this.mux.window) return;
    this.mux.send(encodeCredit(this.remoteChannel, this.consumed));
    this.outstanding -= this.consumed;
    this.consumed = 0;
  }

  /** @internal Peer CREDIT; false if it would pass 2^32 (a peer that lies about its window). */
  grant(bytes: number): boolean {
    if (this.credit + bytes > 0xffffffff) return false;
    this.credit += bytes;
    return true;
  }

  /** @internal Sends one DATA piece if there is data and credit. */
  sendPiece(): boolean {
    if (this.sentClose || this.credit === 0 || this.out.length === 0) return false;
    const head = this.out[0]!;
    const size = Math.min(this.credit, MUX_MAX_DATA_BYTES, head.length - this.outOffset);
    this.mux.send(encodeData(this.localChannel, head.subarray(this.outOffset, this.outOffset + size)));
    this.credit -= size;
    this.outOffset += size;
    if (this.outOffset === head.length) {
      this.out.shift();
      this.outOffset = 0;
    }
    this.sendEndIfDrained();
    return true;
  }

  /** @internal Reads more from the stream once what it gave us has gone out. */
  resumeIfRoom(): void {
    if (this.out.length === 0 && this.stream && !this.stream.destroyed && this.stream.isPaused()) this.stream.resume();
  }

  private sendEndIfDrained(): void {
    if (this.endPending && !this.sentEnd && this.out.length === 0 && !this.sentClose) {
      this.sentEnd = true;
      this.mux.send(encodeEnd(this.localChannel));
      if (this.streamClosed) this.close();
    }
  }

  /** @internal The peer will send no more DATA: null, or the fault. */
  peerEnded(): string | null {
    if (this.peerEnd || this.peerClose) return 'END after the peer\'s END or CLOSE';
    this.peerEnd = true;
    this.pumpInbox();
    return null;
  }

  /** @internal The peer closed its side: ours goes too. Null, or the fault. */
  peerClosed(): string | null {
    if (this.peerClose) return 'a second CLOSE';
    this.peerClose = true;
    this.close();
    return null;
  }

  /** Our stream closed. One that ended cleanly may close before its last output went out (a
   *  disposed model's stream destroys itself at 'end'): that still goes, then END, then CLOSE. */
  private streamGone(): void {
    this.streamClosed = true;
    if (this.endPending && !this.sentEnd && !this.sentClose) return; // sendEndIfDrained closes
    this.close();
  }

  /** @internal The connection closed (see Mux.channelClosed): the peer's END and CLOSE at once,
   *  with nothing sent back. The stream takes what arrived, then is destroyed. */
  connectionClosed(): void {
    this.sentClose = true; // no CLOSE (nor anything else) can go out any more
    if (!this.peerEnd && !this.peerClose) {
      this.peerEnd = true;
      this.pumpInbox();
    }
    this.close();
  }

  /** @internal Destroys the stream now, dropping what it has not taken (see Mux.destroy). */
  destroyStream(): void {
    this.done = true;
    this.inbox.length = 0;
    this.stream?.destroy();
  }

  private close(): void {
    if (!this.sentClose) {
      this.sentClose = true;
      this.mux.send(encodeClose(this.localChannel));
    }
    this.out.length = 0;
    this.mux.removeSession(this);
    this.done = true;
    const stream = this.stream;
    if (!stream || stream.destroyed) return;
    // After the peer's END, the stream first takes what the peer sent (its writable side ends).
    if (this.peerEnd && !stream.writableFinished) stream.once('finish', () => stream.destroy());
    else stream.destroy();
  }
}
