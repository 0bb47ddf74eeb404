import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import { alice, bob, networkKey } from './pair.ts';

const TOTAL = 100 * 1024 * 1024;

test('over real TCP on 127.0.0.1: 100 MiB in mixed message sizes arrives intact (SHA-256 of both ends)', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = tcpConnect(port, '127.0.0.1');
  const [[serverSocket]] = await Promise.all([accepted, once(client, 'connect')]);
  try {
    const [dialer, listener] = await Promise.all([
      secureChannel(client, { identity: alice, networkKey, initiator: true, expectedPeer: bob.id }),
      secureChannel(serverSocket, { identity: bob, networkKey, initiator: false }),
    ]);
    assert.is(dialer.remote.id, bob.id);
    dialer.resume(); // read the listener's close frame when it comes
    const closed = Promise.all([once(dialer, 'close'), once(listener, 'close')]);

    const received = createHash('sha256');
    let receivedBytes = 0;
    listener.on('data', (m: Buffer) => {
      received.update(m);
      receivedBytes += m.length;
    });
    const listenerDone = new Promise<void>((resolve, reject) => {
      listener.on('end', resolve);
      listener.on('error', reject);
    });

    const sent = createHash('sha256');
    const block = randomBytes(4 * 1024 * 1024 + 16);
    const sizes = [300, 65519, 65536, 1 << 20, 4 * 1024 * 1024 + 7, 17];
    let sentBytes = 0;
    for (let i = 0; sentBytes < TOTAL; i++) {
      const size = Math.min(sizes[i % sizes.length]!, TOTAL - sentBytes);
      const message = block.subarray(i % 7, (i % 7) + size);
      sent.update(message);
      sentBytes += message.length;
      if (!dialer.write(message)) await once(dialer, 'drain');
    }
    dialer.end();
    await listenerDone;
    assert.is(receivedBytes, TOTAL);
    assert.is(received.digest('hex'), sent.digest('hex'));
    await closed; // both close frames exchanged, then both sockets ended
    assert.is(dialer.errored, null);
    assert.is(listener.errored, null);
  } finally {
    client.destroy();
    serverSocket.destroy();
    server.close();
    await once(server, 'close');
  }
});

test.run();
