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

function keyOf(data: string, protocol: 1 | 2): string | undefined {
  const message = JSON.parse(data) as {
    type?: string;
    metadata?: { description: string };
    photo?: { description: string };
  };
  if (protocol === 1) return message.metadata?.description;
  return message.type === 'photo' ? message.photo?.description : undefined;
}

process.on('message', (raw: { connect?: Connect; close?: true }) => {
  if (raw.connect) {
    const { url, count, protocol } = raw.connect;
    let open = 0;
    for (let i = 0; i < count; i++) {
      const socket = new WebSocket(url);
      sockets.push(socket);
      socket.on('message', (data: Buffer) => {
        const at = now();
        const key = keyOf(data.toString('utf8'), protocol);
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
