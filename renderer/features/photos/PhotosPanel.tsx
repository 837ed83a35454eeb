import { useEffect, useRef, useState } from 'react';
import type { AdminPhoto, ExportLink } from '../../../shared/protocol';
import { adminFetch, adminJson } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { format } from '../../lib/i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';

/** Set when the engine process died on this photo twice (the relay gave up on it). */
const ENGINE_CRASHED = 'E_ENGINE_CRASHED';

/**
 * Thumbnails come through the admin API (a header, not a URL secret), shown as blob URLs; fetched
 * only once the row scrolls into view.
 */
function Thumb({ photo }: { photo: AdminPhoto }) {
  const host = useRef<HTMLDivElement>(null);
  const [visible, setVisible] = useState(false);
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    const element = host.current;
    if (!element || visible) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) setVisible(true);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [visible]);
  useEffect(() => {
    if (!visible || photo.status !== 'done') return;
    let objectUrl: string | undefined;
    let cancelled = false;
    adminFetch(`/photos/${photo.id}/cutout`)
      .then((response) => response.blob())
      .then((blob) => {
        if (cancelled) return;
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [visible, photo.id, photo.status]);
  return (
    <div className="thumb" ref={host}>
      {url && photo.status === 'done' ? <img src={url} alt="" /> : <span>{photo.status}</span>}
    </div>
  );
}

/** The browser downloads the zip to disk from a single-use link: nothing held in page memory. */
async function downloadAll(): Promise<void> {
  const { url } = await adminJson<ExportLink>('/export-links', { method: 'POST' });
  const link = document.createElement('a');
  link.href = url;
  link.setAttribute('download', '');
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
}

/** The live feed: moderation (hide, delete, approve), retry, approval mode, zip export. */
export function PhotosPanel() {
  const { overview, photos } = useDashboardFeed();
  // Shown at once while the change travels to the relay and back through the feed.
  const [approvalPending, setApprovalPending] = useState<boolean>();
  const [error, setError] = useState<string>();
  const [exporting, setExporting] = useState(false);
  useEffect(() => {
    if (overview && approvalPending === overview.approvalMode) setApprovalPending(undefined);
  }, [overview, approvalPending]);
  const fail = (reason: unknown) =>
    setError(reason instanceof Error ? reason.message : String(reason));
  // The effect of an action arrives through the feed; only a refusal is shown here.
  const act = (path: string, method = 'POST') => {
    setError(undefined);
    adminFetch(path, { method }).catch(fail);
  };
  if (!overview) return <p className="muted">{t.loading}</p>;
  return (
    <div className="photos">
      <div className="toolbar">
        <label className="check">
          <input
            type="checkbox"
            checked={approvalPending ?? overview.approvalMode}
            onChange={(event) => {
              const approvalMode = event.target.checked;
              setApprovalPending(approvalMode);
              adminFetch('/settings', {
                method: 'PUT',
                body: JSON.stringify({ approvalMode }),
              }).catch((reason: unknown) => {
                setApprovalPending(undefined);
                fail(reason);
              });
            }}
          />
          {t.approvalMode}
        </label>
        <button
          type="button"
          disabled={exporting}
          onClick={() => {
            setExporting(true);
            setError(undefined);
            void downloadAll()
              .catch(fail)
              .finally(() => setExporting(false));
          }}
        >
          {exporting ? t.preparing : t.downloadAll}
        </button>
      </div>
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {photos.length === 0 && <p className="muted">{t.noPhotos}</p>}
      <ul className="feed">
        {photos.map((photo) => {
          const crashed = photo.status === 'failed' && photo.errorCode === ENGINE_CRASHED;
          return (
            <li
              key={photo.id}
              data-photo-id={photo.id}
              data-status={photo.status}
              className={[photo.hidden && 'hidden-photo', crashed && 'crashed']
                .filter(Boolean)
                .join(' ')}
            >
              <Thumb photo={photo} />
              <div className="meta">
                <div className="description">
                  {photo.description || <span className="muted">{t.noMessage}</span>}
                </div>
                <div className="muted small">
                  {photo.originalFilename} · {new Date(photo.timestamp).toLocaleTimeString()} ·{' '}
                  <span className={`status status-${photo.status}`} data-testid="photo-status">
                    {photo.status}
                  </span>
                  {photo.processingTime != null && ` · ${Math.round(photo.processingTime)} ms`}
                  {photo.hidden && (
                    <>
                      {' · '}
                      <span className="badge">{t.hidden}</span>
                    </>
                  )}
                  {!photo.approved && (
                    <>
                      {' · '}
                      <span className="badge">{t.waitingApproval}</span>
                    </>
                  )}
                  {photo.attempts > 1 && (
                    <>
                      {' · '}
                      <span className="badge" data-testid="attempts">
                        {format(t.attempts, { n: photo.attempts })}
                      </span>
                    </>
                  )}
                </div>
                {crashed && (
                  <div className="badge crash small" data-testid="engine-crashed">
                    {t.engineCrashed} <code>{photo.errorCode}</code>
                  </div>
                )}
                {photo.errorMessage && <div className="error small">{photo.errorMessage}</div>}
              </div>
              <div className="buttons">
                {!photo.approved && (
                  <button type="button" onClick={() => act(`/photos/${photo.id}/approve`)}>
                    {t.approve}
                  </button>
                )}
                {photo.status === 'done' &&
                  (photo.hidden ? (
                    <button type="button" onClick={() => act(`/photos/${photo.id}/show`)}>
                      {t.show}
                    </button>
                  ) : (
                    <button type="button" onClick={() => act(`/photos/${photo.id}/hide`)}>
                      {t.hide}
                    </button>
                  ))}
                {photo.status === 'failed' && (
                  <button type="button" onClick={() => act(`/photos/${photo.id}/retry`)}>
                    {t.retry}
                  </button>
                )}
                <button
                  type="button"
                  className="danger"
                  onClick={() => act(`/photos/${photo.id}`, 'DELETE')}
                >
                  {t.delete}
                </button>
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
