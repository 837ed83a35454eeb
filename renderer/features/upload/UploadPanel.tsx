import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import type { AdminOverview } from '../../../shared/protocol';
import { adminJson } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';

interface Job {
  name: string;
  progress: number;
  state: 'sending' | 'done' | 'failed';
  message?: string;
}

/** Drag and drop (or pick) photos from the operator's laptop; they go through the normal upload. */
export function UploadPanel() {
  const [jobs, setJobs] = useState<Job[]>([]);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // The current PIN from the feed (it may be rotated while the panel is open).
  const { overview } = useDashboardFeed();
  const latest = useRef(overview);
  useEffect(() => {
    latest.current = overview;
  }, [overview]);

  const send = useCallback(async (files: File[]) => {
    const { pin } = latest.current ?? (await adminJson<AdminOverview>('/overview'));
    for (const file of files) {
      const index = await new Promise<number>((resolve) =>
        setJobs((current) => {
          resolve(current.length);
          return [...current, { name: file.name, progress: 0, state: 'sending' }];
        }),
      );
      const update = (patch: Partial<Job>) =>
        setJobs((current) => current.map((job, i) => (i === index ? { ...job, ...patch } : job)));
      await new Promise<void>((resolve) => {
        const form = new FormData();
        form.append('image', file, file.name);
        const request = new XMLHttpRequest();
        request.open('POST', '/upload/');
        if (pin) request.setRequestHeader('X-Event-Pin', pin);
        request.responseType = 'json';
        request.upload.onprogress = (event) => {
          if (event.lengthComputable) update({ progress: event.loaded / event.total });
        };
        request.onload = () => {
          const body = request.response as { message?: string } | null;
          update(
            request.status === 200
              ? { state: 'done', progress: 1 }
              : { state: 'failed', message: body?.message },
          );
          resolve();
        };
        request.onerror = () => {
          update({ state: 'failed', message: 'network error' });
          resolve();
        };
        request.send(form);
      });
    }
  }, []);

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setOver(false);
    void send(
      Array.from(event.dataTransfer.files).filter(
        (file) => file.type.startsWith('image/') || file.type === '',
      ),
    );
  };

  return (
    <div className="upload">
      <div
        className={`dropzone ${over ? 'over' : ''}`}
        data-testid="dropzone"
        role="button"
        tabIndex={0}
        onDragOver={(event) => {
          event.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        onClick={() => input.current?.click()}
        onKeyDown={(event) => {
          if (event.key === 'Enter' || event.key === ' ') input.current?.click();
        }}
      >
        {t.drop}
        <input
          ref={input}
          type="file"
          accept="image/*"
          multiple
          hidden
          aria-label={t.choose}
          onChange={(event) => {
            void send(Array.from(event.target.files ?? []));
            event.target.value = '';
          }}
        />
      </div>
      <ul className="jobs">
        {jobs.map((job, i) => (
          <li key={i} data-state={job.state}>
            {job.name} —{' '}
            {job.state === 'sending' ? `${Math.round(job.progress * 100)} %` : job.state}
            {job.message && `: ${job.message}`}
            {job.state === 'sending' && <progress max={1} value={job.progress} />}
          </li>
        ))}
      </ul>
    </div>
  );
}
