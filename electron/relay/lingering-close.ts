import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** How much of a refused request's body is read and thrown away before the socket is closed. */
export interface LingerBounds {
  /** Bytes discarded at most after the response was sent. */
  maxBytes: number;
  /** Milliseconds, from the response being sent, before the socket is closed regardless. */
  maxMs: number;
}

/** Room for a refused upload's rest (the limit plus form overhead), and nginx's 5 s. */
export function lingerBounds(maxUploadBytes: number): LingerBounds {
  return { maxBytes: maxUploadBytes + 1024 * 1024, maxMs: 5000 };
}

/**
 * Sockets whose last answer has been given (lingeringClose): still readable while the rest of a
 * refused body is drained, so Node's parser goes on parsing what follows it.
 */
export const lingeringSockets = new WeakSet<Socket>();

/**
 * The server's `request` and `upgrade` listeners, except on a lingering socket: a request
 * pipelined behind a refused upload would otherwise be dispatched, and stored, while its client
 * is only ever sent the refusal and the close — a client without an Idempotency-Key then sends
 * the photo again, and it is there twice. Such a request is not read (its bytes are discarded
 * with the rest), and an upgrade on such a socket is closed.
 */
export function unlessLingering(handlers: {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}) {
  return {
    request: (req: IncomingMessage, res: ServerResponse): void => {
      if (req.socket instanceof Socket && lingeringSockets.has(req.socket)) {
        req.resume();
        return;
      }
      handlers.request(req, res);
    },
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (socket instanceof Socket && lingeringSockets.has(socket)) {
        socket.destroy();
        return;
      }
      handlers.upgrade(req, socket, head);
    },
  };
}

/**
 * The answer to a request whose body has not been read (an upload refused for its PIN, its size,
 * a full queue…) is the connection's last (`Connection: close`), and once it is sent the relay
 * goes on reading and discarding the body, within `bounds`, before it closes: nginx's lingering
 * close. Closing a socket with request bytes still unread makes the kernel send a reset, and a
 * reset can destroy the response on its way (the client then sees EPIPE/ECONNRESET instead of
 * the error JSON). After the response the relay half-closes (FIN), so a client that has read it
 * may stop sending; the socket is closed when the body has ended, the client has closed its
 * side, `maxBytes` were discarded or `maxMs` have passed.
 *
 * Node closes the socket of a `Connection: close` response with `socket.destroySoon()` right
 * after the response is written (http server's resOnFinish); this socket's destroySoon is
 * replaced by the lingering one. (tests/refusals.test.ts checks that writes after the answer
 * are still read, so a Node that stops calling it is noticed.)
 */
export function lingeringClose(
  req: IncomingMessage,
  res: ServerResponse,
  bounds: LingerBounds,
): void {
  res.setHeader('Connection', 'close');
  const socket = req.socket;
  if (!(socket instanceof Socket)) return;
  // From now on nothing more on this connection is answered (unlessLingering).
  lingeringSockets.add(socket);
  let lingering = false;
  socket.destroySoon = () => {
    if (lingering) return;
    lingering = true;
    if (req.complete || socket.destroyed) {
      Socket.prototype.destroySoon.call(socket);
      return;
    }
    let left = bounds.maxBytes;
    const timer = setTimeout(() => socket.destroy(), bounds.maxMs);
    timer.unref();
    // Nothing more will come (or nothing more is wanted): close once the response is flushed.
    const close = () => {
      req.off('data', discard);
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    };
    const discard = (chunk: Buffer) => {
      left -= chunk.length;
      if (left < 0) close();
    };
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', close);
    req.once('end', close);
    req.once('error', close);
    // Whoever read the body before (the form parser) has let go of it; the rest goes nowhere.
    req.unpipe();
    req.removeAllListeners('data');
    req.on('data', discard);
    req.resume();
    socket.end();
  };
}
