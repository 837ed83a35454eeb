import { useCallback, useEffect, useMemo, useState, type SyntheticEvent } from 'react';
import QRCode from 'qrcode';
import { format, messages } from '../../lib/i18n';
import { forgetPin, initialPin, rememberPin, withPin } from '../../lib/pin';
import { downscale, uploadEdge } from './downscale';
import { usePresence } from './use-presence';
import { useUploadQueue, type QueueView } from './use-upload-queue';

const t = messages();
/** The pinError of a PIN the operator rotated (the presence socket was closed with 4001). */
const PIN_ROTATED = 'rotated';

function errorText(code: string | undefined): string {
  switch (code) {
    case 'E_FILE_TOO_LARGE':
      return t.tooLarge;
    case 'E_UNSUPPORTED_FORMAT':
    case 'E_SVG_UNSUPPORTED':
    case 'E_EMPTY_FILE':
      return t.notPhoto;
    case 'E_HEIC_UNSUPPORTED':
      return 'HEIC: ' + t.notPhoto;
    case 'E_CORRUPT_IMAGE':
    case 'E_TRUNCATED_IMAGE':
    case 'E_IMAGE_TOO_LARGE':
      return t.damaged;
    case 'E_PHOTO_DELETED':
      return t.deletedByOperator;
    case 'E_PROCESSING_FAILED':
    case 'E_ENGINE_CRASHED':
      return t.keptForOperator;
    default:
      return t.failed;
  }
}

function PinForm({ error, onPin }: { error?: string; onPin: (pin: string) => void }) {
  const [value, setValue] = useState('');
  const submit = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (value.trim()) onPin(value.trim());
  };
  return (
    <form className="card" onSubmit={submit}>
      <h2>{t.pinTitle}</h2>
      <p className="muted">{t.pinHelp}</p>
      <label htmlFor="pin">{t.pinLabel}</label>
      <input
        id="pin"
        inputMode="numeric"
        autoComplete="one-time-code"
        value={value}
        onChange={(event) => setValue(event.target.value)}
      />
      {error && (
        <p className="error" role="alert">
          {error === PIN_ROTATED ? t.pinChanged : t.wrongPin}
        </p>
      )}
      <button type="submit">{t.join}</button>
    </form>
  );
}

function Item({ item, pin, onRemove }: { item: QueueView; pin: string; onRemove: () => void }) {
  const [preview, setPreview] = useState<string>();
  useEffect(() => {
    if (!item.blob) return;
    const url = URL.createObjectURL(item.blob);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [item.blob]);
  const waitSeconds = Math.max(0, Math.ceil((item.nextAttemptAt - Date.now()) / 1000));
  let status: string;
  if (item.state === 'done') status = t.done;
  else if (item.state === 'failed') status = `${t.failed}: ${errorText(item.error)}`;
  else if (item.sending) status = (item.progress ?? 0) >= 1 ? t.processing : t.uploading;
  else if (item.attempts > 0) status = format(t.retrying, { s: waitSeconds });
  else status = t.queued;
  return (
    <li className={`item item-${item.state}`} data-state={item.state}>
      {item.state === 'done' && item.photoId ? (
        <img
          className="thumb cutout"
          alt=""
          src={withPin(`/api/photos/${item.photoId}/cutout`, pin)}
        />
      ) : (
        preview && <img className="thumb" alt="" src={preview} />
      )}
      <div className="item-body">
        <div className="item-name">{item.name}</div>
        {item.description && <div className="item-description">{item.description}</div>}
        {item.sending && (
          <progress max={1} value={item.progress ?? 0} aria-label={t.uploading}>
            {Math.round((item.progress ?? 0) * 100)}%
          </progress>
        )}
        <div className="item-status" role="status">
          {status}
        </div>
      </div>
      {item.state !== 'waiting' && (
        <button type="button" className="link" onClick={onRemove} aria-label={t.remove}>
          ×
        </button>
      )}
    </li>
  );
}

/** A big button that opens the camera (one photo) or the gallery (several). */
function PickButton(props: {
  label: string;
  testId: string;
  primary?: boolean;
  camera?: boolean;
  onFiles: (files: FileList | null) => void;
}) {
  return (
    <label className={props.primary ? 'button primary' : 'button'}>
      {props.label}
      <input
        type="file"
        accept={props.camera ? 'image/*' : 'image/jpeg,image/png,image/webp,image/*'}
        capture={props.camera ? 'environment' : undefined}
        multiple={!props.camera}
        hidden
        data-testid={props.testId}
        onChange={(event) => {
          props.onFiles(event.target.files);
          // Cleared so choosing the same photo again still fires.
          event.target.value = '';
        }}
      />
    </label>
  );
}

function Invite({ pin }: { pin: string }) {
  const [qr, setQr] = useState<string>();
  useEffect(() => {
    fetch('/api/join', { headers: { 'X-Event-Pin': pin } })
      .then((response) =>
        response.ok ? (response.json() as Promise<{ urls: string[] }>) : undefined,
      )
      .then(async (join) => {
        const base = join?.urls[0] ?? location.origin;
        setQr(
          await QRCode.toDataURL(`${base}/?pin=${encodeURIComponent(pin)}`, {
            margin: 1,
            width: 220,
          }),
        );
      })
      .catch(() => undefined);
  }, [pin]);
  if (!qr) return null;
  return (
    <details className="card invite">
      <summary>{t.invite}</summary>
      <p className="muted">{t.inviteHelp}</p>
      <img src={qr} alt="QR" width={220} height={220} />
    </details>
  );
}

export function Uploader() {
  const [pin, setPin] = useState(initialPin);
  const [pinError, setPinError] = useState<string>();
  const [description, setDescription] = useState('');
  const [smaller, setSmaller] = useState(
    new URLSearchParams(location.search).get('edge') !== 'off',
  );
  const [online, setOnline] = useState(navigator.onLine);

  const onPinRejected = useCallback((message: string) => {
    forgetPin();
    setPin(undefined);
    setPinError(message);
  }, []);
  const { items, add, remove } = useUploadQueue(pin, onPinRejected);
  // A PIN remembered from an earlier event (or a stale link) is checked once, so the page asks
  // for the right one instead of failing every upload and socket with it.
  const [verified, setVerified] = useState(false);
  useEffect(() => {
    if (!pin || verified) return;
    void fetch('/api/photos?limit=1', { headers: { 'X-Event-Pin': pin } }).then(
      (response) => {
        if (response.status === 401) onPinRejected('PIN');
        else setVerified(true);
      },
      () => undefined, // offline: keep the PIN; uploads wait in the outbox
    );
  }, [pin, verified, onPinRejected]);
  const onPinRotated = useCallback(() => onPinRejected(PIN_ROTATED), [onPinRejected]);
  usePresence(verified ? pin : undefined, onPinRotated);

  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener('online', update);
    window.addEventListener('offline', update);
    return () => {
      window.removeEventListener('online', update);
      window.removeEventListener('offline', update);
    };
  }, []);

  const choose = useCallback(
    async (files: FileList | null) => {
      if (!files?.length) return;
      const prepared = await Promise.all(
        Array.from(files).map(async (file) => ({
          blob: smaller ? await downscale(file, uploadEdge()) : file,
          name: file.name,
        })),
      );
      await add(prepared, description.trim());
      setDescription('');
    },
    [add, description, smaller],
  );

  const checkPin = useCallback(async (candidate: string) => {
    const response = await fetch('/api/photos?limit=1', { headers: { 'X-Event-Pin': candidate } });
    if (response.ok) {
      rememberPin(candidate);
      setPinError(undefined);
      setPin(candidate);
    } else {
      setPinError(String(response.status));
    }
  }, []);

  const sorted = useMemo(() => items, [items]);

  return (
    <main className="uploader">
      <header>
        <h1>{t.title}</h1>
        <p className="muted">{t.subtitle}</p>
        {!online && <span className="badge">{t.offline}</span>}
      </header>
      {!pin ? (
        <PinForm error={pinError} onPin={(candidate) => void checkPin(candidate)} />
      ) : (
        <>
          <section className="card">
            <label htmlFor="description">{t.description}</label>
            <input
              id="description"
              maxLength={1000}
              placeholder={t.descriptionPlaceholder}
              value={description}
              onChange={(event) => setDescription(event.target.value)}
            />
            <div className="actions">
              <PickButton
                label={t.takePhoto}
                primary
                testId="camera"
                camera
                onFiles={(files) => void choose(files)}
              />
              <PickButton
                label={t.choosePhotos}
                testId="gallery"
                onFiles={(files) => void choose(files)}
              />
            </div>
            <label className="check">
              <input
                type="checkbox"
                checked={smaller}
                onChange={(event) => setSmaller(event.target.checked)}
              />
              {t.smaller}
            </label>
          </section>
          <ul className="items" aria-live="polite">
            {sorted.map((item) => (
              <Item key={item.key} item={item} pin={pin} onRemove={() => void remove(item.key)} />
            ))}
          </ul>
          <Invite pin={pin} />
        </>
      )}
    </main>
  );
}
