import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Admission } from './admission.ts';
import type { Logger } from './logger.ts';

export interface ConnectionLimits {
  /** HEADERS_TIMEOUT_SECONDS: a connection must have sent its request headers within this. */
  headersTimeoutMs: number;
  /** CONNECTIONS_TOTAL: the server's maxConnections. */
  connectionsTotal: number;
}

/**
 * Caps on plain TCP connections, before any of them is an HTTP request: anyone on the Wi-Fi can
 * open thousands and send nothing, and each holds a descriptor and a parser.
 *
 * - At most connectionsPerAddress per address (admission.ts, with its rule for the relay's own
 *   computer) and `connectionsTotal` in all (Node's maxConnections): beyond, closed at once.
 * - A connection that sends no byte for `headersTimeoutMs` before its first request is closed.
 *   Node's headersTimeout covers only connections that have begun a request, and it is checked
 *   every connectionsCheckingInterval (app.ts sets 5 s). The idle timer stops once the headers
 *   are in: an upload has its own idle and whole-body timeouts (multipart.ts), a request waiting
 *   for its photo to be processed sends nothing for a while, and between requests Node's own
 *   keepAliveTimeout (set on the socket after each response) takes over. An upgraded socket
 *   (WebSocket) stops it too: the broadcaster's heartbeat watches it from then on.
 *
 * Returns the open connections (a stop closes what is left of them).
 */
export function guardConnections(
  server: http.Server,
  limits: ConnectionLimits,
  { admission, logger }: { admission: Admission; logger: Logger },
): Set<Socket> {
  const sockets = new Set<Socket>();
  server.maxConnections = limits.connectionsTotal;
  server.on('connection', (socket: Socket) => {
    let release: () => void;
    try {
      release = admission.openConnection(socket.remoteAddress ?? 'unknown');
    } catch {
      logger.info(
        { event: 'connection.refused', address: socket.remoteAddress },
        'too many connections from this address: closed',
      );
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      release();
    });
    // No listener for the socket's 'timeout' but Node's own, which destroys a socket no request
    // or response claims.
    socket.setTimeout(limits.headersTimeoutMs);
  });
  // Before any other listener: a response finished in the same tick sets keepAliveTimeout, and
  // that must not be undone here.
  server.prependListener('request', (req: http.IncomingMessage) => req.socket.setTimeout(0));
  server.prependListener('upgrade', (_req: http.IncomingMessage, socket: Socket) =>
    socket.setTimeout(0),
  );
  return sockets;
}
