import type { ReactNode } from 'react';
import type { ClusterQueue, ClusterStatus } from '../../../shared/cluster';
import { t } from '../../lib/dashboard-i18n';
import { format } from '../../lib/i18n';
import { useClusterStatus } from './use-cluster-status';

/** HH:MM:SS in the operator's time zone. */
const clock = (iso: string) =>
  new Date(iso).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });

/** A translated sentence with `{name}` slots filled by code spans (as text, never HTML). */
function withCode(template: string, codes: Record<string, string>): ReactNode[] {
  return template
    .split(/\{(\w+)\}/)
    .map((part, i) => (i % 2 === 1 ? <code key={i}>{codes[part] ?? part}</code> : part));
}

/** A relay's address as the operator reads it: host and port (the whole URL on hover). */
function shortUrl(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/**
 * The first cell of a machine's row: its online dot and name, and under them what it is and
 * whether it is online (the narrow side column has no room for more columns).
 */
function MachineCell({
  online,
  name,
  title,
  prefix,
  children,
}: {
  online: boolean;
  name: string;
  title: string;
  prefix: 'relay' | 'worker';
  children?: ReactNode;
}) {
  return (
    <td className="cluster-machine" title={title}>
      <span className={online ? 'dot on' : 'dot'} aria-hidden="true" />
      <span
        className="cluster-name"
        data-testid={`cluster-${prefix}-${prefix === 'relay' ? 'url' : 'host'}`}
      >
        {name}
      </span>
      <span className="cluster-sub">
        {children}
        <span data-testid={`cluster-${prefix}-online`}>
          {online ? t.clusterOnline : t.clusterOffline}
        </span>
      </span>
    </td>
  );
}

function RedisLine({ redis }: { redis: NonNullable<ClusterStatus['redis']> }) {
  const label =
    redis.state === 'connected'
      ? t.redisConnected
      : redis.state === 'connecting'
        ? t.redisConnecting
        : format(t.redisDown, { time: clock(redis.since) });
  return (
    <div className="cluster-redis">
      <p
        data-testid="cluster-redis-state"
        data-state={redis.state}
        title={new Date(redis.since).toLocaleString()}
      >
        <span className="dot" data-state={redis.state} aria-hidden="true" />
        {label} <code data-testid="cluster-redis-url">{redis.url}</code>
      </p>
      {redis.lastError && (
        <p className="error small" data-testid="cluster-redis-error">
          {redis.lastError}
        </p>
      )}
    </div>
  );
}

function RelaysTable({ relays }: { relays: ClusterStatus['relays'] }) {
  return (
    <div className="cluster-table">
      <table className="clients cluster-relays" data-testid="cluster-relays">
        <thead>
          <tr>
            <th>{t.clusterRelay}</th>
            <th>{t.clusterWalls}</th>
            <th>{t.clusterPending}</th>
            <th title={t.clusterLocalWorker}>{t.clusterLocalWorkerShort}</th>
          </tr>
        </thead>
        <tbody>
          {relays.map((relay) => (
            <tr
              key={relay.id}
              className={relay.online ? undefined : 'offline'}
              data-testid="cluster-relay-row"
              data-relay-id={relay.id}
              data-url={relay.url}
              data-self={relay.self}
              data-online={relay.online}
            >
              <MachineCell
                online={relay.online}
                name={shortUrl(relay.url)}
                title={relay.url}
                prefix="relay"
              >
                {relay.self && (
                  <span className="badge" data-testid="cluster-relay-self">
                    {t.clusterThisRelay}
                  </span>
                )}
              </MachineCell>
              <td data-testid="cluster-relay-walls">{relay.walls}</td>
              <td data-testid="cluster-relay-pending">{relay.pending}</td>
              <td data-testid="cluster-relay-local-worker">{relay.localWorker ? t.yes : t.no}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function WorkersTable({ workers }: { workers: ClusterStatus['workers'] }) {
  if (workers.length === 0) {
    return (
      <p className="muted small" data-testid="cluster-no-workers">
        {t.clusterNoWorkers}
      </p>
    );
  }
  return (
    <div className="cluster-table">
      <table className="clients cluster-workers" data-testid="cluster-workers">
        <thead>
          <tr>
            <th>{t.clusterHost}</th>
            <th title={t.clusterThreads}>{t.clusterThreadsShort}</th>
            <th>{t.model}</th>
            <th>{t.clusterRunning}</th>
            <th>{t.clusterDone}</th>
            <th>{t.clusterFailed}</th>
          </tr>
        </thead>
        <tbody>
          {workers.map((worker) => (
            <tr
              key={worker.id}
              className={worker.online ? undefined : 'offline'}
              data-testid="cluster-worker-row"
              data-worker-id={worker.id}
              data-kind={worker.kind}
              data-online={worker.online}
            >
              <MachineCell
                online={worker.online}
                name={worker.host}
                title={`${worker.host} · ${worker.id}`}
                prefix="worker"
              >
                <span className="badge" data-testid="cluster-worker-kind" title={t.clusterKind}>
                  {worker.kind === 'local' ? t.clusterKindLocal : t.clusterKindRemote}
                </span>
              </MachineCell>
              <td data-testid="cluster-worker-threads">{worker.threads}</td>
              <td data-testid="cluster-worker-model">{worker.model}</td>
              <td data-testid="cluster-worker-running">{worker.running}</td>
              <td data-testid="cluster-worker-done">{worker.done}</td>
              <td data-testid="cluster-worker-failed">{worker.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function QueueCounts({ queue }: { queue: ClusterQueue | null }) {
  if (!queue) {
    return (
      <p className="muted small" data-testid="cluster-queue-unknown">
        {t.clusterQueueUnknown}
      </p>
    );
  }
  const counts = [
    ['waiting', t.clusterQueueWaiting, queue.waiting],
    ['active', t.clusterQueueActive, queue.active],
    ['delayed', t.clusterQueueDelayed, queue.delayed],
    ['failed', t.clusterQueueFailed, queue.failed],
  ] as const;
  return (
    <dl className="life cluster-queue" data-testid="cluster-queue">
      {counts.map(([key, label, value]) => (
        <div key={key}>
          <dt>{label}</dt>
          <dd data-testid={`cluster-queue-${key}`}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * The machines of this event: on its own, this relay and its engine and how to add machines;
 * with Redis, its state, the relays, the inference workers and the shared queue.
 */
export function ClusterPanel() {
  const { status, error } = useClusterStatus();
  return (
    <div className="cluster" data-testid="cluster-panel" data-mode={status?.mode}>
      {error && (
        <p className="error small" role="alert" data-testid="cluster-error">
          {t.clusterUnavailable} {error}
        </p>
      )}
      {!status ? (
        !error && <p className="muted">{t.loading}</p>
      ) : (
        <>
          {status.mode === 'single' ? (
            <p className="small" data-testid="cluster-single">
              {t.clusterSingle}{' '}
              {withCode(t.clusterHowToAdd, {
                redis: 'REDIS_URL',
                worker: 'npx photo-relay worker',
              })}
            </p>
          ) : (
            <>
              {status.redis && <RedisLine redis={status.redis} />}
              {status.unshared > 0 && (
                <p className="cluster-unshared" data-testid="cluster-unshared">
                  {status.unshared === 1
                    ? t.clusterUnsharedOne
                    : format(t.clusterUnshared, { n: status.unshared })}
                </p>
              )}
              {status.waiting > 0 && (
                <p className="cluster-unshared" data-testid="cluster-waiting">
                  {format(t.clusterWaiting, { n: status.waiting })}
                </p>
              )}
            </>
          )}
          <h3>{t.clusterRelays}</h3>
          <RelaysTable relays={status.relays} />
          <h3>{t.clusterWorkers}</h3>
          <WorkersTable workers={status.workers} />
          {status.mode === 'cluster' && (
            <>
              <h3>{t.clusterQueue}</h3>
              <QueueCounts queue={status.queue} />
            </>
          )}
        </>
      )}
    </div>
  );
}
