import type { WallInfo } from '../../shared/protocol.ts';
import { adminPhoto } from '../photos/views.ts';
import type { PhotoRecord } from '../store/photo-store.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { OperatorView } from './operator-view.ts';
import type { PhotoChanges } from './processor.ts';

const METRICS_PERIOD_MS = 2000;

/**
 * Pushes the dashboard's state over its WebSocket (role `dashboard`): a snapshot on connect
 * (sent by the broadcaster), then each photo change, client change and setting change as it
 * happens, and the metrics and clients every 2 s while a dashboard is connected.
 */
export class DashboardFeed implements PhotoChanges {
  private timer: NodeJS.Timeout | undefined;

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
    clearInterval(this.timer);
  }

  changed(record: PhotoRecord): void {
    this.broadcaster().broadcastDashboard({ type: 'admin.photo', photo: adminPhoto(record) });
  }

  removed(id: string): void {
    this.broadcaster().broadcastDashboard({ type: 'admin.photo-removed', id });
  }

  clientsChanged(): void {
    const broadcaster = this.broadcaster();
    if (!broadcaster.hasDashboard) return;
    broadcaster.broadcastDashboard({
      type: 'admin.clients',
      clients: broadcaster.list(),
      walls: this.walls(),
    });
  }

  overviewChanged(): void {
    this.broadcaster().broadcastDashboard({
      type: 'admin.overview',
      overview: this.view.overview(),
    });
  }
}
