import type { WallInfo } from '../../shared/protocol.ts';
import { adminPhoto } from '../photos/views.ts';
import type { PhotoRecord } from '../store/photo-store.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { OperatorView } from './operator-view.ts';
import type { PhotoChanges } from './processor.ts';

const METRICS_PERIOD_MS = 2000;
/** The client list is pushed at most this often, however many sockets come and go. */
export const CLIENTS_PERIOD_MS = 1000;

/**
 * Pushes the dashboard's state over its WebSocket (role `dashboard`): a snapshot on connect
 * (sent by the broadcaster), then each photo change and setting change as it happens, the client
 * list when it changes (at most once a second) and the metrics every 2 s while a dashboard is
 * connected.
 */
export class DashboardFeed implements PhotoChanges {
  private timer: NodeJS.Timeout | undefined;
  /** The pending push of the client list, if one is scheduled. */
  private clientsTimer: NodeJS.Timeout | undefined;
  /** When the client list was last pushed (ms). */
  private clientsPushedAt = 0;
  private stopped = false;

  constructor(
    private readonly view: OperatorView,
    private readonly broadcaster: () => Broadcaster,
    private readonly walls: () => WallInfo[],
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      const broadcaster = this.broadcaster();
      if (!broadcaster.hasDashboard) return;
      broadcaster.broadcastDashboard({ type: 'admin.metrics', metrics: this.view.metrics() });
      // "Last seen" moves with every pong, not only when a client comes or goes.
      this.clientsChanged();
    }, METRICS_PERIOD_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.clientsTimer);
    this.clientsTimer = undefined;
  }

  changed(record: PhotoRecord): void {
    this.broadcaster().broadcastDashboard({ type: 'admin.photo', photo: adminPhoto(record) });
  }

  removed(id: string): void {
    this.broadcaster().broadcastDashboard({ type: 'admin.photo-removed', id });
  }

  /**
   * The client list (and walls) changed: a socket came or went, a wall was revoked, or the
   * metrics tick wants "last seen" refreshed. The one way the list is pushed: on the next turn
   * of the event loop when none went out in the last second, else once when the second is up
   * (a trailing timer; the list is read then, so it is the newest). Pushing on every change sent
   * the whole list once per connect and once per close: 1500 sockets coming and going made
   * hundreds of megabytes for the dashboard.
   */
  clientsChanged(): void {
    if (this.clientsTimer || this.stopped) return;
    const wait = Math.max(0, this.clientsPushedAt + CLIENTS_PERIOD_MS - Date.now());
    this.clientsTimer = setTimeout(() => {
      this.clientsTimer = undefined;
      this.pushClients();
    }, wait);
    this.clientsTimer.unref();
  }

  overviewChanged(): void {
    this.broadcaster().broadcastDashboard({
      type: 'admin.overview',
      overview: this.view.overview(),
    });
  }

  private pushClients(): void {
    const broadcaster = this.broadcaster();
    if (!broadcaster.hasDashboard) return;
    this.clientsPushedAt = Date.now();
    broadcaster.broadcastDashboard({
      type: 'admin.clients',
      clients: broadcaster.list(),
      walls: this.walls(),
    });
  }
}
