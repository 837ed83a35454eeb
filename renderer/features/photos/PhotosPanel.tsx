import { useCallback, useEffect, useState } from 'react';
import type { AdminOverview, AdminPhoto } from '../../../shared/protocol';
import { adminFetch, adminJson } from '../../lib/admin-api';
import { usePolling } from '../../lib/use-polling';
import { t } from '../../lib/dashboard-i18n';

/** Thumbnails come through the admin API (a header, not a URL secret), shown as blob URLs. */
function Thumb({ photo }: { photo: AdminPhoto }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (photo.status !== 'done') return;
    let objectUrl: string | undefined;
    adminFetch(`/photos/${photo.id}/cutout`)
      .then((response) => response.blob())
      .then((blob) => {
        objectUrl = URL.createObjectURL(blob);
        setUrl(objectUrl);
      })
      .catch(() => undefined);
    return () => {
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [photo.id, photo.status]);
  return (
    <div className="thumb">{url ? <img src={url} alt="" /> : <span>{photo.status}</span>}</div>
  );
}

/** The live feed: moderation (hide, delete, approve), retry, approval mode, zip export. */
export function PhotosPanel() {
  const load = useCallback(
    () =>
      Promise.all([
        adminJson<AdminPhoto[]>('/photos?limit=60'),
        adminJson<AdminOverview>('/overview'),
      ]),
    [],
  );
  const { data, error, refresh } = usePolling(load, 2000);
  // Shown at once while the change travels to the relay (and after, until the next poll).
  const [approvalPending, setApprovalPending] = useState<boolean>();
  useEffect(() => {
    if (data && approvalPending === data[1].approvalMode) setApprovalPending(undefined);
  }, [data, approvalPending]);
  const act = (path: string, method = 'POST') =>
    void adminFetch(path, { method }).then(refresh, refresh);
  const download = async () => {
    const blob = await (await adminFetch('/export.zip')).blob();
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `photo-relay-${new Date().toISOString().slice(0, 10)}.zip`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  if (error) return <p className="error">{error}</p>;
  if (!data) return <p className="muted">{t.loading}</p>;
  const [photos, overview] = data;
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
              void adminFetch('/settings', {
                method: 'PUT',
                body: JSON.stringify({ approvalMode }),
              }).then(refresh, refresh);
            }}
          />
          {t.approvalMode}
        </label>
        <button type="button" onClick={() => void download()}>
          {t.downloadAll}
        </button>
      </div>
      {photos.length === 0 && <p className="muted">{t.noPhotos}</p>}
      <ul className="feed">
        {photos.map((photo) => (
          <li
            key={photo.id}
            data-photo-id={photo.id}
            data-status={photo.status}
            className={photo.hidden ? 'hidden-photo' : ''}
          >
            <Thumb photo={photo} />
            <div className="meta">
              <div className="description">
                {photo.description || <span className="muted">{t.noMessage}</span>}
              </div>
              <div className="muted small">
                {photo.originalFilename} · {new Date(photo.timestamp).toLocaleTimeString()} ·{' '}
                {photo.status}
                {photo.processingTime != null && ` · ${Math.round(photo.processingTime)} ms`}
                {photo.hidden && ` · ${t.hidden}`}
                {!photo.approved && ` · ${t.waitingApproval}`}
              </div>
              {photo.errorMessage && <div className="error small">{photo.errorMessage}</div>}
            </div>
            <div className="buttons">
              {!photo.approved && (
                <button onClick={() => act(`/photos/${photo.id}/approve`)}>{t.approve}</button>
              )}
              {photo.status === 'done' &&
                (photo.hidden ? (
                  <button onClick={() => act(`/photos/${photo.id}/show`)}>{t.show}</button>
                ) : (
                  <button onClick={() => act(`/photos/${photo.id}/hide`)}>{t.hide}</button>
                ))}
              {photo.status === 'failed' && (
                <button onClick={() => act(`/photos/${photo.id}/retry`)}>{t.retry}</button>
              )}
              <button className="danger" onClick={() => act(`/photos/${photo.id}`, 'DELETE')}>
                {t.delete}
              </button>
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
