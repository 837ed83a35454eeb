import { useCallback, useEffect, useState, type SyntheticEvent } from 'react';
import type { AdminOverview, RelaySettings } from '../../../shared/protocol';
import { adminFetch, adminJson } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';

const MODELS = [
  { id: 'u2netp', label: 'u2netp — general (default)' },
  { id: 'mediapipe', label: 'mediapipe — people only, very fast' },
  { id: 'sinet', label: 'sinet — close-up portraits' },
];

/** Settings that persist in the relay's store: output background, display size, model. */
export function SettingsPanel() {
  const [overview, setOverview] = useState<AdminOverview>();
  const [draft, setDraft] = useState<RelaySettings>();
  const [message, setMessage] = useState<string>();
  const [hasImage, setHasImage] = useState(false);
  const load = useCallback(async () => {
    const current = await adminJson<AdminOverview>('/overview');
    setOverview(current);
    setDraft(current.settings);
    setHasImage(current.settings.background === 'image' || current.hasBackgroundImage);
  }, []);
  useEffect(() => {
    load().catch((error: unknown) => setMessage(String(error)));
  }, [load]);
  if (!overview || !draft) return <p className="muted">{message ?? t.loading}</p>;
  const transparent = draft.background === 'transparent';
  const colour = draft.background.startsWith('#');
  const save = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    void adminJson('/settings', { method: 'PUT', body: JSON.stringify(draft) }).then(
      async () => {
        setMessage(draft.model !== overview.model ? t.modelNextStart : t.saved);
        await load();
      },
      (error: unknown) => setMessage(error instanceof Error ? error.message : String(error)),
    );
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
            onChange={() => setDraft({ ...draft, background: 'transparent' })}
          />
          {t.transparent}
        </label>
        <label className="check">
          <input
            type="radio"
            name="background"
            checked={colour}
            onChange={() => setDraft({ ...draft, background: '#ffffff' })}
          />
          {t.colour}
          <input
            type="color"
            aria-label="Background colour"
            disabled={!colour}
            value={colour ? draft.background : '#ffffff'}
            onChange={(event) => setDraft({ ...draft, background: event.target.value })}
          />
        </label>
        <label className="check">
          <input
            type="radio"
            name="background"
            checked={draft.background === 'image'}
            disabled={!hasImage}
            onChange={() => setDraft({ ...draft, background: 'image' })}
          />
          {t.image}
          <input
            type="file"
            accept="image/jpeg,image/png,image/webp"
            aria-label={t.chooseImage}
            onChange={(event) => {
              const file = event.target.files?.[0];
              if (!file) return;
              void adminFetch('/background-image', { method: 'PUT', body: file }).then(
                () => {
                  setHasImage(true);
                  setDraft({ ...draft, background: 'image' });
                },
                (error: unknown) =>
                  setMessage(error instanceof Error ? error.message : String(error)),
              );
            }}
          />
        </label>
      </fieldset>
      <label>
        {t.displaySize}{' '}
        <input
          type="number"
          min={256}
          max={8192}
          step={64}
          value={draft.displayMaxEdge}
          onChange={(event) => setDraft({ ...draft, displayMaxEdge: Number(event.target.value) })}
        />
      </label>
      <label>
        {t.model}{' '}
        <select
          value={draft.model}
          onChange={(event) => setDraft({ ...draft, model: event.target.value })}
        >
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
