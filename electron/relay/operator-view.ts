import type {
  AdminMetrics,
  AdminOverview,
  DashboardMessage,
  WallInfo,
} from '../../shared/protocol.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import type { Engine } from '../engine/index.ts';
import type { Settings } from '../photos/settings.ts';
import { adminPhoto } from '../photos/views.ts';
import { diskSpace } from '../store/disk-guard.ts';
import type { PhotoStore } from '../store/photo-store.ts';
import type { BackgroundImage } from './background-image.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { Metrics } from './metrics.ts';
import type { Processor } from './processor.ts';

export interface Lifecycle {
  startedAt: string;
  starts: number;
  resumed: number;
  crashLooped: number;
}

export interface OperatorViewDeps {
  config: RelayConfig;
  store: PhotoStore;
  engine: Engine;
  settings: Settings;
  metrics: Metrics;
  backgroundImage: BackgroundImage;
  broadcaster: () => Broadcaster;
  processor: () => Processor;
  walls: () => WallInfo[];
  lifecycle: () => Lifecycle;
  /** LAN base URLs of the relay (http://address:port). */
  baseUrls: () => string[];
  /** The event's other relays (several machines): a wall's link lists them to move to. */
  otherRelays: () => string[];
}

const percentile = (values: number[], p: number): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** What the operator sees, built in one place for the admin API and the pushed dashboard feed. */
export class OperatorView {
  constructor(private readonly deps: OperatorViewDeps) {}

  overview(): AdminOverview {
    const { settings, engine, config, backgroundImage } = this.deps;
    const bases = this.deps.baseUrls();
    const { pin, approvalMode, background, displayMaxEdge, model, cutoutMode } = settings.current();
    const query = pin ? `?pin=${encodeURIComponent(pin)}` : '';
    const others = this.deps.otherRelays();
    const relays = others.length
      ? `${query ? '&' : '?'}relays=${encodeURIComponent(others.join(','))}`
      : '';
    return {
      uploaderUrls: bases.map((base) => `${base}/${query}`),
      displayUrls: bases.map((base) => `${base}/display${query}${relays}`),
      pin,
      model: engine.model.id,
      approvalMode,
      settings: { background, displayMaxEdge, model, cutoutMode },
      hasBackgroundImage: !!backgroundImage.bytes,
      dataDir: config.dataDir,
    };
  }

  metrics(): AdminMetrics {
    const { config, engine, metrics } = this.deps;
    const processor = this.deps.processor();
    const memory = process.memoryUsage();
    return {
      connections: this.deps.broadcaster().counts(),
      queue: { pending: processor.pending, limit: config.queueSize },
      uploads: { ...metrics.uploadTotals, byCode: { ...metrics.uploadTotals.byCode } },
      processingMs: {
        count: processor.recent.length,
        p50: percentile(processor.recent, 50),
        p95: percentile(processor.recent, 95),
      },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed },
      uptimeSeconds: process.uptime(),
      model: engine.model.id,
      disk: { ...diskSpace(config.dataDir), minFreeBytes: config.minFreeDiskBytes },
      lifecycle: this.deps.lifecycle(),
    };
  }

  snapshot(): DashboardMessage {
    return {
      type: 'admin.snapshot',
      overview: this.overview(),
      metrics: this.metrics(),
      clients: this.deps.broadcaster().list(),
      walls: this.deps.walls(),
      photos: this.deps.store.list(200).map(adminPhoto),
    };
  }
}
