import { StrictMode, useEffect, useState, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { ClientsPanel } from '../../features/clients/ClientsPanel';
import { JoinPanel } from '../../features/join/JoinPanel';
import { MetricsPanel } from '../../features/metrics/MetricsPanel';
import { PhotosPanel } from '../../features/photos/PhotosPanel';
import { SettingsPanel } from '../../features/settings/SettingsPanel';
import { UploadPanel } from '../../features/upload/UploadPanel';
import { adminFetch, adminToken, AdminApiError } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { ErrorBoundary } from '../../lib/ErrorBoundary';
import './admin.css';

function Panel({
  title,
  children,
  wide = false,
}: {
  title: string;
  children: ReactNode;
  wide?: boolean;
}) {
  return (
    <ErrorBoundary name={title}>
      <section className={`panel ${wide ? 'wide' : ''}`} aria-labelledby={`panel-${title}`}>
        <h2 id={`panel-${title}`}>{title}</h2>
        {children}
      </section>
    </ErrorBoundary>
  );
}

/** The operator's dashboard: only the admin API, only with the admin token. */
function Dashboard() {
  const [state, setState] = useState<'checking' | 'ok' | 'refused'>(
    adminToken() ? 'checking' : 'refused',
  );
  useEffect(() => {
    if (state !== 'checking') return;
    void adminFetch('/overview').then(
      () => setState('ok'),
      (error: unknown) => setState(error instanceof AdminApiError ? 'refused' : 'checking'),
    );
  }, [state]);
  if (state === 'refused') {
    return (
      <main className="refused" role="alert">
        <h1>Photo Relay</h1>
        <p>{t.refused}</p>
      </main>
    );
  }
  if (state === 'checking') return <main className="muted">{t.connecting}</main>;
  return (
    <main className="dashboard">
      <header>
        <h1>Photo Relay</h1>
      </header>
      <div className="panels">
        <Panel title={t.join}>
          <JoinPanel />
        </Panel>
        <Panel title={t.upload}>
          <UploadPanel />
        </Panel>
        <Panel title={t.metrics} wide>
          <MetricsPanel />
        </Panel>
        <Panel title={t.clients} wide>
          <ClientsPanel />
        </Panel>
        <Panel title={t.photos} wide>
          <PhotosPanel />
        </Panel>
        <Panel title={t.settings}>
          <SettingsPanel />
        </Panel>
      </div>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Dashboard />
  </StrictMode>,
);
