import { useEffect, useState } from 'react';
import QRCode from 'qrcode';
import { adminFetch } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';

function Qr({ url, label }: { url: string; label: string }) {
  const [image, setImage] = useState<string>();
  useEffect(() => {
    void QRCode.toDataURL(url, { margin: 1, width: 160 }).then(setImage, () => undefined);
  }, [url]);
  return (
    <figure className="qr">
      {image && <img src={image} width={160} height={160} alt={`QR code: ${label}`} />}
      <figcaption>
        {label}
        <br />
        <code>{url}</code>
      </figcaption>
    </figure>
  );
}

/** Getting guests and displays connected: LAN addresses, QR codes, the PIN. */
export function JoinPanel() {
  const { overview: data } = useDashboardFeed();
  const [index, setIndex] = useState(0);
  const [error, setError] = useState<string>();
  if (!data) return <p className="muted">{t.loading}</p>;
  const uploader = data.uploaderUrls[index] ?? data.uploaderUrls[0];
  const display = data.displayUrls[index] ?? data.displayUrls[0];
  return (
    <div className="join">
      <p>
        {t.eventPin}{' '}
        <strong className="pin" data-testid="pin">
          {data.pin ?? t.pinOff}
        </strong>{' '}
        {data.pin && (
          <button
            type="button"
            title={t.rotatePinTitle}
            onClick={() => {
              // The new PIN arrives through the feed (admin.overview).
              setError(undefined);
              adminFetch('/pin/rotate', { method: 'POST' }).catch((reason: unknown) =>
                setError(reason instanceof Error ? reason.message : String(reason)),
              );
            }}
          >
            {t.rotatePin}
          </button>
        )}{' '}
        · {t.model} <code>{data.model}</code>
      </p>
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {data.uploaderUrls.length > 1 && (
        <label>
          {t.network}{' '}
          <select value={index} onChange={(event) => setIndex(Number(event.target.value))}>
            {data.uploaderUrls.map((url, i) => (
              <option key={url} value={i}>
                {new URL(url).host}
              </option>
            ))}
          </select>
        </label>
      )}
      <div className="qrs">
        {uploader && <Qr url={uploader} label={t.guestsQr} />}
        {display && <Qr url={display} label={t.displaysQr} />}
      </div>
    </div>
  );
}
