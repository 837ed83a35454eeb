import { useEffect, useState, type SyntheticEvent } from 'react';
import type { RelaySettings } from '../../../shared/protocol';
import { adminFetch } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';

const MODELS = [
  { id: 'u2netp', label: 'u2netp — general (default)' },
  { id: 'mediapipe', label: 'mediapipe — people only, very fast' },
  { id: 'sinet', label: 'sinet — close-up portraits' },
];

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Settings that persist in the relay's store: output background, display size, model. */
export function SettingsPanel() {
  const { overview } = useDashboardFeed();
  // The operator's changes over the relay's settings (which arrive through the feed).
  const [edits, setEdits] = useState<Partial<RelaySettings>>({});
  const [message, setMessage] = useState<string>();
  const [uploaded, setUploaded] = useState(false);
  const [sending, setSending] = useState(false);
  const settings = overview?.settings;
  useEffect(() => {
    if (!settings) return;
    // A change the relay now reports as its setting is done; the others (unsaved) stay.
    setEdits((current) => {
      const left = Object.fromEntries(
        Object.entries(current).filter(
          ([key, value]) => settings[key as keyof RelaySettings] !== value,
        ),
      );
      return Object.keys(left).length === Object.keys(current).length ? current : left;
    });
  }, [settings]);
  if (!overview || !settings) return <p className="muted">{t.loading}</p>;
  const draft: RelaySettings = { ...settings, ...edits };
  const edit = (patch: Partial<RelaySettings>) => setEdits((current) => ({ ...current, ...patch }));
  const hasImage = uploaded || overview.hasBackgroundImage || settings.background === 'image';
  const transparent = draft.background === 'transparent';
  const colour = draft.background.startsWith('#');
  const save = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    setMessage(undefined);
    void adminFetch('/settings', { method: 'PUT', body: JSON.stringify(draft) }).then(
      () => setMessage(draft.model !== overview.model ? t.modelNextStart : t.saved),
      (error: unknown) => setMessage(errorText(error)),
    );
  };
  const sendImage = (file: File) => {
    setMessage(undefined);
    setSending(true);
    // The image's own bytes with its own type (not JSON): the relay reads and checks the format.
    void adminFetch('/background-image', {
      method: 'PUT',
      body: file,
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
    })
      .then(() => {
        setUploaded(true);
        edit({ background: 'image' });
        setMessage(t.backgroundUploaded);
      })
      .catch((error: unknown) => setMessage(errorText(error)))
      .finally(() => setSending(false));
  };
  return (
    <form className="settings" onSubmit={save}>
      <fieldset>
        <legend>{t.background}</legend>
        <label className="check">
          <input
            type="radio"
            name="background"
            checked={transparent}
            onChange={() => edit({ background: 'transparent' })}
          />
          {t.transparent}
        </label>
        <label className="check">
          <input
            type="radio"
            name="background"
            checked={colour}
            onChange={() => edit({ background: '#ffffff' })}
          />
          {t.colour}
          <input
            type="color"
            aria-label="Background colour"
            disabled={!colour}
            value={colour ? draft.background : '#ffffff'}
            onChange={(event) => edit({ background: event.target.value })}
          />
        </label>
        <div className="check">
          <label className="check">
            <input
              type="radio"
              name="background"
              value="image"
              checked={draft.background === 'image'}
              disabled={!hasImage}
              onChange={() => edit({ background: 'image' })}
            />
            {t.image}
          </label>
          <input
            type="file"
            accept="image/jpeg,image/png,image/webp"
            aria-label={t.chooseImage}
            disabled={sending}
            onChange={(event) => {
              const file = event.target.files?.[0];
              event.target.value = '';
              if (file) sendImage(file);
            }}
          />
        </div>
      </fieldset>
      <label>
        {t.displaySize}{' '}
        <input
          type="number"
          min={256}
          max={8192}
          step={64}
          value={draft.displayMaxEdge}
          onChange={(event) => edit({ displayMaxEdge: Number(event.target.value) })}
        />
      </label>
      <label>
        {t.cutoutMode}{' '}
        <select
          value={draft.cutoutMode}
          data-testid="cutout-mode"
          onChange={(event) => edit({ cutoutMode: event.target.value as 'quality' | 'fast' })}
        >
          <option value="quality">{t.modeQuality}</option>
          <option value="fast">{t.modeFast}</option>
        </select>
      </label>
      <label>
        {t.model}{' '}
        <select value={draft.model} onChange={(event) => edit({ model: event.target.value })}>
          {MODELS.map((model) => (
            <option key={model.id} value={model.id}>
              {model.label}
            </option>
          ))}
        </select>{' '}
        <span className="muted small">
          {t.running}: {overview.model}
        </span>
      </label>
      <button type="submit">{t.save}</button>
      {message && (
        <p role="status" className="small">
          {message}
        </p>
      )}
    </form>
  );
}
