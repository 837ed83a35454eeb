import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { PhotoRelayError } from '../../shared/errors.ts';
import { PROTOCOL_V2, type ClientRole } from '../../shared/protocol.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import type { Admission } from './admission.ts';
import { checkAdmin, clientAddress, type PinGuard } from './auth.ts';
import type { AttachOptions, Broadcaster, Credential } from './broadcaster.ts';
import { asCatalogError } from './error-handler.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { hostAllowed, originAllowed } from './origin-policy.ts';
import { MAX_WALLS, type IssueRefusal, type WallCredentials } from './wall-credentials.ts';

const ROLES: ClientRole[] = ['display', 'uploader', 'dashboard'];

export interface UpgradeDeps {
  config: RelayConfig;
  pins: PinGuard;
  broadcaster: Broadcaster;
  walls: WallCredentials;
  logger: Logger;
  metrics: Metrics;
  stopping: () => boolean;
  /** Connections per address and in all (admission.ts). */
  admission: Admission;
  /** The other relays of the event (cluster/): a wall page served by one may connect here. */
  peerOrigins: () => string[];
}

/**
 * How long a refused upgrade's socket stays open after the answer: time for the answer to be read
 * before the close (closing at once with unread bytes from the client could reset the
 * connection and destroy the answer), not so long that a client that never closes its side holds
 * the socket.
 */
const REFUSED_CLOSE_MS = 2000;

/**
 * An HTTP refusal on a socket that asked to upgrade: the catalog's JSON, a half-close, and the
 * socket destroyed REFUSED_CLOSE_MS later whatever the client does (end() alone leaves it open
 * for as long as the client keeps its side open).
 */
function refuse(socket: Duplex, error: PhotoRelayError, metrics: Metrics): void {
  metrics.errors.inc({ code: error.code });
  const body = JSON.stringify(error.toBody());
  const retry = error.retryAfterSeconds ? `Retry-After: ${error.retryAfterSeconds}\r\n` : '';
  socket.end(
    `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`,
  );
  const timer = setTimeout(() => socket.destroy(), REFUSED_CLOSE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * `WS /ws`: the original protocol (PIN) and protocol 2 (`protocol=2&role=…`). Guests (displays,
 * uploaders) need the PIN; the dashboard role needs the admin token (`token=`, loopback only).
 * A protocol-2 display may present its own credential instead (`wall=`); one that joins with the
 * PIN is given one in its hello, so a PIN rotation does not close it (at most ISSUES_PER_ADDRESS
 * per address and MAX_WALLS in all; beyond either it is let in with the PIN alone, and no
 * credential is ever dropped to make room). Original-protocol displays and uploaders hold only
 * the PIN. Returns the server's `upgrade` listener.
 */
export function upgradeHandler(deps: UpgradeDeps) {
  const { config, pins, broadcaster, walls, logger, metrics } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 });
  wss.on('error', (error) =>
    logger.error({ event: 'ws.error', err: error.message }, 'WebSocket server error'),
  );

  /**
   * What the socket is let in with, and for a protocol-2 display let in with the PIN whether it
   * may be given a credential of its own (`refusal`: why not; it is let in with the PIN anyway).
   */
  async function authenticate(
    req: http.IncomingMessage,
    role: ClientRole,
    protocol: 1 | 2,
    url: URL,
  ): Promise<{ credential: Credential; issue: boolean; refusal?: IssueRefusal }> {
    if (role === 'dashboard') {
      checkAdmin(req, config.adminToken, url.searchParams.get('token') ?? '');
      return { credential: { kind: 'admin' }, issue: false };
    }
    const wall = role === 'display' && protocol === PROTOCOL_V2;
    const credential = await pins.checkGuest(req, { allowWall: wall });
    if (!wall || credential.kind !== 'pin') return { credential, issue: false };
    const refusal = await walls.reserve(clientAddress(req));
    return { credential, issue: refusal === undefined, refusal };
  }

  /**
   * A protocol-2 display let in with the PIN is given its own credential, shown once in the
   * hello, unless its address had its share (or the table is full): then it holds the PIN only.
   */
  function attachOptions(
    req: http.IncomingMessage,
    role: ClientRole,
    protocol: 1 | 2,
    access: { credential: Credential; issue: boolean; refusal?: IssueRefusal },
  ): AttachOptions {
    const address = clientAddress(req);
    const options: AttachOptions = {
      role,
      protocol,
      address,
      userAgent: req.headers['user-agent'],
      credential: access.credential,
    };
    const issued = access.issue ? walls.issue(req.headers['user-agent'] ?? '') : undefined;
    if (issued) {
      options.credential = { kind: 'wall', wallId: issued.id };
      options.hello = { wallToken: issued.token };
      logger.info({ event: 'wall.issued', wallId: issued.id }, 'display given a wall credential');
    } else if (access.issue || access.refusal) {
      const reason = access.refusal ?? 'full';
      logger.info(
        { event: 'wall.not-issued', reason, address },
        reason === 'full'
          ? `display let in with the PIN only: ${MAX_WALLS} wall credentials are kept already`
          : 'display let in with the PIN only: this address had its share of new wall credentials',
      );
    }
    return options;
  }

  return (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://relay');
    const origin = req.headers.origin;
    const early =
      url.pathname !== '/ws'
        ? 'E_NOT_FOUND'
        : deps.stopping()
          ? 'E_SHUTTING_DOWN'
          : !hostAllowed(req.headers.host, config)
            ? 'E_HOST_FORBIDDEN'
            : origin &&
                !originAllowed(origin, req.headers.host, [
                  ...config.corsOrigins,
                  ...deps.peerOrigins(),
                ])
              ? 'E_ORIGIN_FORBIDDEN'
              : undefined;
    if (early) {
      refuse(socket, new PhotoRelayError(early), metrics);
      return;
    }
    // Counted from the upgrade request (its authentication may take a while) until the socket
    // closes, or until it is refused: a refused socket, still open for its answer to be read,
    // holds no place.
    let release: () => void;
    try {
      release = deps.admission.openSocket(clientAddress(req));
    } catch (error) {
      refuse(socket, asCatalogError(error), metrics);
      return;
    }
    socket.once('close', release);
    const protocol = url.searchParams.get('protocol') === String(PROTOCOL_V2) ? 2 : 1;
    const requested = url.searchParams.get('role') as ClientRole | null;
    const role = protocol === 2 && requested && ROLES.includes(requested) ? requested : 'display';
    void authenticate(req, role, protocol, url).then(
      (access) => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          const options = attachOptions(req, role, protocol, access);
          const held = options.credential;
          if (held.kind === 'wall') {
            walls.touch(held.wallId);
            ws.on('pong', () => walls.touch(held.wallId));
          }
          broadcaster.attach(ws, options);
        });
      },
      (error: unknown) => {
        release();
        refuse(socket, asCatalogError(error), metrics);
      },
    );
  };
}
