/**
 * What the operator is told about the machines of one event (`GET /admin/api/cluster`), shared
 * by the relay and the dashboard. With no REDIS_URL the relay is on its own (`mode: 'single'`).
 */

/** The part a process plays: a relay (serves guests and walls) or an inference worker. */
export type ProcessRole = 'relay' | 'worker';

export type RedisState = 'connected' | 'connecting' | 'down';

export interface ClusterRelay {
  id: string;
  /** Where the other machines reach it (its cut-outs, its originals for workers). */
  url: string;
  /** The origins its pages are opened at (walls moving from it to another relay come from these). */
  pageOrigins: string[];
  startedAt: string;
  lastSeenAt: string;
  /** Heard from within the last heartbeat window. */
  online: boolean;
  /** This is the relay answering. */
  self: boolean;
  walls: number;
  /** Its photos waiting for or in inference. */
  pending: number;
  /** Whether it runs a worker itself (LOCAL_WORKER). */
  localWorker: boolean;
}

export interface ClusterWorker {
  id: string;
  host: string;
  /** A relay's own worker, or a separate `photo-relay worker` process. */
  kind: 'local' | 'remote';
  threads: number;
  model: string;
  startedAt: string;
  lastSeenAt: string;
  online: boolean;
  /** Jobs running on it now. */
  running: number;
  /** Jobs it has finished since it started. */
  done: number;
  failed: number;
}

export interface ClusterQueue {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface ClusterStatus {
  mode: 'single' | 'cluster';
  role: ProcessRole;
  selfId: string;
  /** null when no REDIS_URL is set. */
  redis: {
    /** The URL with any password replaced by `***`. */
    url: string;
    state: RedisState;
    /** When the state last changed (ISO 8601). */
    since: string;
    lastError: string | null;
  } | null;
  relays: ClusterRelay[];
  workers: ClusterWorker[];
  /** null when single, or while Redis is down (unknown). */
  queue: ClusterQueue | null;
  /** Changes made here and not yet shared with the other relays (Redis down). */
  unshared: number;
  /** Photos of other relays not shown here yet: their relay did not give the cut-out (it is retried). */
  waiting: number;
}
