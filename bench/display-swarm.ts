/**
 * A separate process full of displays, so the relay's broadcast is measured as it is on a LAN and
 * not against clients sharing its event loop. Controlled over IPC: {connect: {url, count,
 * protocol}} → {connected}; every received message is reported as {received: {key, at}} where
 * `key` is the photo's description and `at` is epoch milliseconds (high resolution).
 */
import WebSocket from 'ws';

interface Connect {
  url: string;
  count: number;
  protocol: 1 | 2;
}

const sockets: WebSocket[] = [];
const now = () => performance.timeOrigin + performance.now();

const METADATA = Buffer.from('"metadata":');

/**
 * The photo's description, read without parsing megabytes of base64: in the original message the
 * metadata object comes last, so only the tail is parsed. A real display parses the whole message,
 * but on its own device, not on the relay's two cores.
 */
function keyOf(data: Buffer, protocol: 1 | 2): string | undefined {
  if (protocol === 1) {
    const at = data.lastIndexOf(METADATA);
    if (at === -1) return undefined;
    const tail = data.subarray(at + METADATA.length, data.length - 1).toString('utf8');
    return (JSON.parse(tail) as { description: string }).description;
  }
  const message = JSON.parse(data.toString('utf8')) as {
    type?: string;
    photo?: { description: string };
  };
  return message.type === 'photo' ? message.photo?.description : undefined;
}

process.on('message', (raw: { connect?: Connect; close?: true }) => {
  if (raw.connect) {
    const { url, count, protocol } = raw.connect;
    let open = 0;
    for (let i = 0; i < count; i++) {
      // Displays are other devices: their UTF-8 checks should not eat the relay's two cores.
      const socket = new WebSocket(url, { skipUTF8Validation: true });
      sockets.push(socket);
      socket.on('message', (data: Buffer) => {
        const at = now();
        const key = keyOf(data, protocol);
        if (key) process.send?.({ received: { key, at } });
      });
      socket.on('open', () => {
        if (++open === count) process.send?.({ connected: count });
      });
      socket.on('error', (error) => process.send?.({ error: error.message }));
    }
  }
  if (raw.close) {
    for (const socket of sockets.splice(0)) socket.terminate();
    process.send?.({ closed: true });
  }
});
