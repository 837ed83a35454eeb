import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  CLOSE_CODES,
  PROTOCOL_V2,
  type ClientInfo,
  type ClientRole,
  type DashboardMessage,
  type PhotoEvent,
  type ServerMessageV2,
} from '../../shared/protocol.ts';
import { originalMetadata } from '../photos/views.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

/** What a socket was opened with: it decides what closes it (a PIN rotation, a revoke). */
export type Credential =
  | { kind: 'pin' }
  | { kind: 'wall'; wallId: string }
  | { kind: 'admin' }
  /** EVENT_PIN=off */
  | { kind: 'open' };

export interface AttachOptions {
  role: ClientRole;
  protocol: 1 | 2;
  address: string;
  userAgent?: string;
  credential: Credential;
  /** Extra fields of the protocol-2 hello (a new wall's credential). */
  hello?: Partial<Extract<ServerMessageV2, { type: 'hello' }>>;
}

interface Client {
  id: string;
  credential: Credential;
  userAgent: string;
  connectedAt: string;
  lastSeenAt: string;
  socket: WebSocket;
  role: ClientRole;
  protocol: 1 | 2;
  address: string;
  alive: boolean;
  /** Since when the socket has been over the buffer limit (0: it is not). */
  congestedSince: number;
}

export interface BroadcasterOptions {
  logger: Logger;
  metrics: Metrics;
  heartbeatMs?: number;
  /**
   * A display with more than this queued in its socket skips messages until it catches up; a
   * dashboard is disconnected instead (it reconnects to a fresh snapshot).
   */
  maxBufferedBytes?: number;
  /** A display stuck over the limit this long is disconnected (it can reconnect and resync). */
  stalledMs?: number;
  history: () => PhotoEvent[];
  /** Told when a client comes or goes (the dashboard's Clients panel). */
  onClientsChanged?: () => void;
  /** Sent to a dashboard socket right after it connects. */
  dashboardSnapshot?: () => DashboardMessage;
}

/**
 * The original protocol's message, exactly as JSON.stringify would write it, but assembled from
 * buffers: base64 needs no escaping, so the megabytes of image are never scanned or copied into a
 * JavaScript string twice.
 */
export function originalMessage(event: PhotoEvent, cutoutPng: Buffer): Buffer {
  const metadata = originalMetadata(event);
  return Buffer.concat([
    Buffer.from('{"imageData":"'),
    Buffer.from(cutoutPng.toString('base64'), 'latin1'),
    Buffer.from(
      `","timestamp":${JSON.stringify(event.timestamp)},"metadata":${JSON.stringify(metadata)}}`,
    ),
  ]);
}

/**
 * Every connected WebSocket, by role and protocol. A broadcast is serialised once per protocol
 * into one Buffer and the same Buffer is sent to every client: with a 2–3 MB base64 image that is
 * the difference between one JSON.stringify and hundreds. Slow clients are skipped, never waited
 * for, so one bad display cannot slow the others or grow memory without bound.
 */
export class Broadcaster {
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly maxBufferedBytes: number;
  private readonly stalledMs: number;

  constructor(private readonly options: BroadcasterOptions) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.stalledMs = options.stalledMs ?? 30_000;
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  attach(socket: WebSocket, options: AttachOptions): string {
    const { role, protocol, address, userAgent = '', credential } = options;
    const now = new Date().toISOString();
    const client: Client = {
      id: randomUUID(),
      credential,
      userAgent: userAgent.slice(0, 300),
      connectedAt: now,
      lastSeenAt: now,
      socket,
      role,
      protocol,
      address,
      alive: true,
      congestedSince: 0,
    };
    this.clients.add(client);
    this.options.metrics.connections.inc({ role });
    this.options.logger.info(
      { event: 'client.connect', role, protocol, address },
      'client connected',
    );
    socket.on('pong', () => {
      client.alive = true;
      client.lastSeenAt = new Date().toISOString();
    });
    socket.on('error', (error) => {
      this.options.logger.warn(
        { event: 'client.error', role, address, err: error.message },
        'socket error',
      );
    });
    // Clients have nothing to say on either protocol; anything they send is ignored.
    socket.on('message', () => undefined);
    socket.on('close', (code) => {
      if (!this.clients.delete(client)) return;
      this.options.metrics.connections.dec({ role });
      this.options.logger.info(
        { event: 'client.disconnect', role, protocol, address, code },
        'client disconnected',
      );
      this.options.onClientsChanged?.();
    });
    if (protocol === PROTOCOL_V2) {
      const hello: ServerMessageV2 = {
        type: 'hello',
        protocol: PROTOCOL_V2,
        serverTime: new Date().toISOString(),
        role,
        history: this.options.history(),
        ...options.hello,
      };
      socket.send(JSON.stringify(hello));
      if (role === 'dashboard' && this.options.dashboardSnapshot)
        socket.send(JSON.stringify(this.options.dashboardSnapshot()));
    }
    this.options.onClientsChanged?.();
    return client.id;
  }

  /** Sends a dashboard message to every dashboard socket. */
  broadcastDashboard(message: DashboardMessage): void {
    let payload: Buffer | undefined;
    for (const client of this.clients) {
      if (client.role !== 'dashboard') continue;
      payload ??= Buffer.from(JSON.stringify(message));
      this.deliver(client, payload);
    }
  }

  /** True when a dashboard is connected (the feed's timer runs only then). */
  get hasDashboard(): boolean {
    for (const client of this.clients) if (client.role === 'dashboard') return true;
    return false;
  }

  /** Closes every socket whose credential matches (PIN rotated, wall revoked); returns how many. */
  closeWhere(match: (credential: Credential) => boolean, code: number, reason: string): number {
    let closed = 0;
    for (const client of this.clients) {
      if (match(client.credential)) {
        client.socket.close(code, reason);
        closed++;
      }
    }
    return closed;
  }

  /** Sends a finished photo to every client; returns how many it was sent to. */
  broadcastPhoto(event: PhotoEvent, cutoutPng: Buffer): number {
    let original: Buffer | undefined;
    let v2: Buffer | undefined;
    let sent = 0;
    for (const client of this.clients) {
      if (client.protocol === 1) {
        original ??= originalMessage(event, cutoutPng);
        if (this.deliver(client, original)) sent++;
      } else {
        v2 ??= Buffer.from(
          JSON.stringify({ type: 'photo', photo: event } satisfies ServerMessageV2),
        );
        if (this.deliver(client, v2)) sent++;
      }
    }
    return sent;
  }

  /** Tells protocol-2 clients that a photo is gone (moderation). */
  broadcastRemoved(id: string): void {
    const message = Buffer.from(JSON.stringify({ type: 'removed', id } satisfies ServerMessageV2));
    for (const client of this.clients) if (client.protocol === 2) this.deliver(client, message);
  }

  private deliver(client: Client, payload: Buffer): boolean {
    const { socket } = client;
    if (socket.readyState !== socket.OPEN) return false;
    if (socket.bufferedAmount > this.maxBufferedBytes && client.role === 'dashboard') {
      // A display may skip a photo (the next hello resyncs it), but the dashboard's messages are
      // changes to a state it keeps: one skipped "done" leaves a photo "processing" for good. So
      // a dashboard that cannot take a message is cut off at once, and reconnects (the page does
      // so after any close: use-dashboard-feed.ts) to a fresh admin.snapshot. Simpler than
      // marking it and sending a snapshot once it drains: no drain tracking, no message order to
      // reason about, and the path is the page's ordinary reconnect. terminate(), not close():
      // a close frame would wait behind the megabytes already queued.
      this.options.metrics.broadcastDrops.inc();
      this.options.logger.warn(
        { event: 'dashboard.slow', address: client.address, buffered: socket.bufferedAmount },
        'dashboard too slow: disconnected (it reconnects to a fresh snapshot)',
      );
      socket.terminate();
      return false;
    }
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      const now = Date.now();
      client.congestedSince ||= now;
      this.options.metrics.broadcastDrops.inc();
      this.options.logger.warn(
        {
          event: 'client.slow',
          role: client.role,
          address: client.address,
          buffered: socket.bufferedAmount,
        },
        'display too slow: message skipped',
      );
      if (now - client.congestedSince > this.stalledMs) socket.terminate();
      return false;
    }
    client.congestedSince = 0;
    // One shared Buffer, sent as a text frame (the original clients expect text).
    socket.send(payload, { binary: false });
    return true;
  }

  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.options.logger.info(
          { event: 'client.dead', role: client.role, address: client.address },
          'no pong: disconnecting',
        );
        client.socket.terminate();
        continue;
      }
      client.alive = false;
      client.socket.ping();
    }
  }

  /** Every connected client, for the operator's dashboard. */
  list(): ClientInfo[] {
    return [...this.clients].map(
      ({ id, role, protocol, address, userAgent, connectedAt, lastSeenAt, credential }) => ({
        id,
        role,
        protocol,
        address,
        userAgent,
        connectedAt,
        lastSeenAt,
        wallId: credential.kind === 'wall' ? credential.wallId : null,
      }),
    );
  }

  /** Disconnects one client (the operator's choice); false when it is already gone. */
  disconnect(id: string): boolean {
    for (const client of this.clients) {
      if (client.id === id) {
        client.socket.close(CLOSE_CODES.disconnectedByOperator, 'disconnected by the operator');
        return true;
      }
    }
    return false;
  }

  counts(): Record<ClientRole, number> {
    const counts: Record<ClientRole, number> = { display: 0, uploader: 0, dashboard: 0 };
    for (const client of this.clients) counts[client.role]++;
    return counts;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Closes every socket (1001 going away) and waits briefly for them to go. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    const closing = [...this.clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            client.socket.terminate();
            resolve();
          }, 2000);
          client.socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          client.socket.close(1001, 'relay shutting down');
        }),
    );
    await Promise.all(closing);
  }
}
