import { useCallback, useEffect, useState } from 'react';
import QRCode from 'qrcode';
import type { AdminOverview } from '../../../shared/protocol';
import { adminFetch, adminJson } from '../../lib/admin-api';
import { usePolling } from '../../lib/use-polling';
import { t } from '../../lib/dashboard-i18n';

function Qr({ url, label }: { url: string; label: string }) {
  const [image, setImage] = useState<string>();
  useEffect(() => {
    void QRCode.toDataURL(url, { margin: 1, width: 180 }).then(setImage, () => undefined);
  }, [url]);
  return (
    <figure className="qr">
      {image && <img src={image} width={180} height={180} alt={`QR code: ${label}`} />}
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
  const load = useCallback(() => adminJson<AdminOverview>('/overview'), []);
  const { data, error, refresh } = usePolling(load, 10_000);
  const [index, setIndex] = useState(0);
  if (error) return <p className="error">{error}</p>;
  if (!data) return <p className="muted">{t.loading}</p>;
  const uploader = data.uploaderUrls[index] ?? data.uploaderUrls[0];
  const display = data.displayUrls[index] ?? data.displayUrls[0];
  return (
    <div className="join">
      <p>
        {t.eventPin}{' '}
        <strong className="pin" data-testid="pin">
          {data.pin ?? 'off'}
        </strong>{' '}
        {data.pin && (
          <button
            type="button"
            title="A new PIN: connected displays stay connected; guests need the new code"
            onClick={() => void adminFetch('/pin/rotate', { method: 'POST' }).then(refresh)}
          >
            {t.rotatePin}
          </button>
        )}{' '}
        · model <code>{data.model}</code>
      </p>
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
