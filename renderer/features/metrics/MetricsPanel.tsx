import { useCallback, useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { AdminMetrics } from '../../../shared/protocol';
import { adminJson } from '../../lib/admin-api';
import { usePolling } from '../../lib/use-polling';
import { t } from '../../lib/dashboard-i18n';

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
  title,
  time,
  values,
  unit,
}: {
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
        width: 320,
        height: 140,
        legend: { show: false },
        scales: { x: { time: true } },
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
        <strong data-testid={`metric-${title}`}>
          {last == null ? '—' : `${Math.round(last)} ${unit}`}
        </strong>
      </figcaption>
      <div ref={host} />
    </figure>
  );
}

/** Processing time, throughput, queue depth and memory, live; errors by code. */
export function MetricsPanel() {
  const load = useCallback(() => adminJson<AdminMetrics>('/metrics'), []);
  const { data, error } = usePolling(load, 2000);
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
      ? ((data.uploads.ok - before.ok) / Math.max(at - before.at, 0.001)) * 60
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
  if (error) return <p className="error">{error}</p>;
  if (!data) return <p className="muted">{t.loading}</p>;
  const total = data.uploads.ok + data.uploads.failed;
  return (
    <div className="metrics">
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
        <Chart title="processing p50" time={series.time} values={series.p50} unit="ms" />
        <Chart title="photos per minute" time={series.time} values={series.perMinute} unit="/min" />
        <Chart title="queue" time={series.time} values={series.queue} unit="" />
        <Chart title="memory" time={series.time} values={series.rssMb} unit="MB" />
      </div>
    </div>
  );
}
