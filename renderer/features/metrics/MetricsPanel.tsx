import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { AdminMetrics } from '../../../shared/protocol';
import { t } from '../../lib/dashboard-i18n';
import { format } from '../../lib/i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';
import { formatBytes, LOW_DISK_BYTES } from './disk';

const WINDOW = 150; // samples kept (5 minutes at 2 s)

interface Series {
  time: number[];
  p50: (number | null)[];
  perMinute: number[];
  queue: number[];
  rssMb: number[];
}

/** A small live line chart (uPlot) over the rolling window. */
function Chart({
  id,
  title,
  time,
  values,
  unit,
}: {
  id: string;
  title: string;
  time: number[];
  values: (number | null)[];
  unit: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    if (!host.current) return;
    plot.current = new uPlot(
      {
        width: 400,
        height: 130,
        legend: { show: false },
        scales: {
          // One sample (just connected): a minute's window, not years around one point.
          x: { time: true, range: (_u, min, max) => (min === max ? [min - 60, max] : [min, max]) },
        },
        axes: [{ stroke: '#9fb0c0' }, { stroke: '#9fb0c0', size: 50 }],
        series: [{}, { label: title, stroke: '#f2a93b', width: 2 }],
      },
      [[], []],
      host.current,
    );
    return () => plot.current?.destroy();
  }, [title]);
  useEffect(() => {
    plot.current?.setData([time, values]);
  }, [time, values]);
  const last = values.at(-1);
  return (
    <figure className="chart">
      <figcaption>
        {title}:{' '}
        <strong data-testid={`metric-${id}`}>
          {last == null ? '—' : `${Math.round(last)} ${unit}`}
        </strong>
      </figcaption>
      <div ref={host} />
    </figure>
  );
}

/** This data folder's life (starts, resumed and crash-looped photos) and the disk it fills. */
function EventLife({ metrics }: { metrics: AdminMetrics }) {
  const { lifecycle, disk } = metrics;
  const low = disk.freeBytes < LOW_DISK_BYTES;
  return (
    <dl className="life">
      <div>
        <dt>{t.startedAt}</dt>
        <dd data-testid="started-at">
          {new Date(lifecycle.startedAt).toLocaleString()}{' '}
          <span className="muted small">
            ({t.starts} <span data-testid="starts">{lifecycle.starts}</span>
            {' · '}
            {lifecycle.starts > 1 ? format(t.restarts, { n: lifecycle.starts - 1 }) : t.firstStart})
          </span>
        </dd>
      </div>
      <div>
        <dt>{t.resumed}</dt>
        <dd data-testid="resumed">{lifecycle.resumed}</dd>
      </div>
      <div className={lifecycle.crashLooped > 0 ? 'warn' : ''}>
        <dt>{t.crashLooped}</dt>
        <dd data-testid="crash-looped">{lifecycle.crashLooped}</dd>
      </div>
      <div className={low ? 'warn' : ''}>
        <dt>{t.freeDisk}</dt>
        <dd data-testid="disk-free" data-low={low}>
          {format(t.diskOf, {
            free: formatBytes(disk.freeBytes),
            total: formatBytes(disk.totalBytes),
          })}
        </dd>
      </div>
    </dl>
  );
}

/** Processing time, throughput, queue depth and memory, live; errors by code; the event's life. */
export function MetricsPanel() {
  const { metrics: data } = useDashboardFeed();
  const [series, setSeries] = useState<Series>({
    time: [],
    p50: [],
    perMinute: [],
    queue: [],
    rssMb: [],
  });
  const previous = useRef<{ at: number; ok: number } | undefined>(undefined);
  useEffect(() => {
    if (!data) return;
    const at = Date.now() / 1000;
    const before = previous.current;
    const perMinute = before
      ? (Math.max(data.uploads.ok - before.ok, 0) / Math.max(at - before.at, 0.001)) * 60
      : 0;
    previous.current = { at, ok: data.uploads.ok };
    setSeries((current) => ({
      time: [...current.time, at].slice(-WINDOW),
      p50: [...current.p50, data.processingMs.p50].slice(-WINDOW),
      perMinute: [...current.perMinute, perMinute].slice(-WINDOW),
      queue: [...current.queue, data.queue.pending].slice(-WINDOW),
      rssMb: [...current.rssMb, data.memory.rss / 1e6].slice(-WINDOW),
    }));
  }, [data]);
  if (!data) return <p className="muted">{t.loading}</p>;
  const total = data.uploads.ok + data.uploads.failed;
  return (
    <div className="metrics">
      <EventLife metrics={data} />
      <p>
        {t.uploads} <strong data-testid="uploads-ok">{data.uploads.ok}</strong> {t.ok},{' '}
        {data.uploads.failed} {t.failed}
        {total > 0 && ` (${((data.uploads.failed / total) * 100).toFixed(1)} % ${t.errors})`} ·{' '}
        {t.displays} {data.connections.display} · {t.uploaders} {data.connections.uploader}
      </p>
      {Object.keys(data.uploads.byCode).length > 0 && (
        <ul className="codes">
          {Object.entries(data.uploads.byCode).map(([code, count]) => (
            <li key={code}>
              <code>{code}</code> × {count}
            </li>
          ))}
        </ul>
      )}
      <div className="charts">
        <Chart
          id="processing"
          title={t.chartProcessing}
          time={series.time}
          values={series.p50}
          unit="ms"
        />
        <Chart
          id="per-minute"
          title={t.chartPerMinute}
          time={series.time}
          values={series.perMinute}
          unit="/min"
        />
        <Chart id="queue" title={t.chartQueue} time={series.time} values={series.queue} unit="" />
        <Chart
          id="memory"
          title={t.chartMemory}
          time={series.time}
          values={series.rssMb}
          unit="MB"
        />
      </div>
    </div>
  );
}
