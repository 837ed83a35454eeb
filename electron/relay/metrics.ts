import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProcessRole } from '../../shared/cluster.ts';
import type { ClientRole } from '../../shared/protocol.ts';

/** The relay's Prometheus metrics, in a registry of its own (tests run several relays). */
export function createMetrics(role: ProcessRole = 'relay') {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'photo_relay_' });
  // Which part this process plays among the event's machines (a relay or a `worker`).
  new Gauge({
    name: 'photo_relay_process_role',
    help: 'The role of this process (1 for its role)',
    labelNames: ['role'] as const,
    registers: [registry],
  }).set({ role }, 1);
  const connections = new Gauge({
    name: 'photo_relay_ws_connections',
    help: 'Open WebSocket connections by role',
    labelNames: ['role'] as const,
    registers: [registry],
  });
  const processing = new Histogram({
    name: 'photo_relay_processing_seconds',
    help: 'Upload received to cut-out broadcast',
    buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
    registers: [registry],
  });
  const uploads = new Counter({
    name: 'photo_relay_uploads_total',
    help: 'Upload requests by outcome (ok or an error code)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'photo_relay_errors_total',
    help: 'Error responses by code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'photo_relay_queue_depth',
    help: 'Photos waiting for the engine (not counting those inside it)',
    registers: [registry],
  });
  const broadcastDrops = new Counter({
    name: 'photo_relay_broadcast_drops_total',
    help: 'Messages skipped for displays too slow to keep up',
    registers: [registry],
  });
  for (const role of ['display', 'uploader', 'dashboard'] satisfies ClientRole[]) {
    connections.set({ role }, 0);
  }
  // The same outcomes as plain numbers, for the dashboard.
  const uploadTotals = { ok: 0, failed: 0, byCode: {} as Record<string, number> };
  /** Counts one upload request's outcome ('ok' or its error code). */
  const countUpload = (outcome: string) => {
    uploads.inc({ outcome });
    if (outcome === 'ok') uploadTotals.ok++;
    else {
      uploadTotals.failed++;
      uploadTotals.byCode[outcome] = (uploadTotals.byCode[outcome] ?? 0) + 1;
    }
  };
  return {
    registry,
    connections,
    processing,
    uploads,
    errors,
    queueDepth,
    broadcastDrops,
    uploadTotals,
    countUpload,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
