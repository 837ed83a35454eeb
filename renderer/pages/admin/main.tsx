import { StrictMode, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { ClientsPanel } from '../../features/clients/ClientsPanel';
import { ClusterPanel } from '../../features/cluster/ClusterPanel';
import { JoinPanel } from '../../features/join/JoinPanel';
import { DiskWarning } from '../../features/metrics/DiskWarning';
import { MetricsPanel } from '../../features/metrics/MetricsPanel';
import { PhotosPanel } from '../../features/photos/PhotosPanel';
import { SettingsPanel } from '../../features/settings/SettingsPanel';
import { UploadPanel } from '../../features/upload/UploadPanel';
import { t } from '../../lib/dashboard-i18n';
import { ErrorBoundary } from '../../lib/ErrorBoundary';
import { DashboardFeedProvider, useDashboardFeed } from '../../lib/use-dashboard-feed';
import './admin.css';

function Panel({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <ErrorBoundary name={title}>
      <section className={`panel panel-${id}`} aria-labelledby={`panel-${id}`}>
        <h2 id={`panel-${id}`}>{title}</h2>
        {children}
      </section>
    </ErrorBoundary>
  );
}

/** Whether the pushed state is live right now, or the page is waiting for the relay. */
function LiveIndicator() {
  const { status } = useDashboardFeed();
  return (
    <span className="feed-status" data-state={status} role="status" data-testid="feed-status">
      <span className="dot" aria-hidden="true" />
      {status === 'live' ? t.live : t.reconnecting}
    </span>
  );
}

/**
 * The operator's dashboard: its state pushed over one dashboard WebSocket, its actions through the
 * admin API, both only with the admin token. The photo feed is the main column, at the top.
 */
function Dashboard() {
  const { status, overview } = useDashboardFeed();
  if (status === 'refused') {
    return (
      <main className="refused" role="alert">
        <h1>Photo Relay</h1>
        <p>{t.refused}</p>
      </main>
    );
  }
  if (!overview) return <main className="muted connecting">{t.connecting}</main>;
  return (
    <main className="dashboard">
      <header>
        <h1>Photo Relay</h1>
        <LiveIndicator />
      </header>
      <DiskWarning />
      <div className="columns">
        <div className="main-column">
          <Panel id="photos" title={t.photos}>
            <PhotosPanel />
          </Panel>
          <Panel id="metrics" title={t.metrics}>
            <MetricsPanel />
          </Panel>
          <Panel id="clients" title={t.clients}>
            <ClientsPanel />
          </Panel>
        </div>
        <aside className="side-column">
          <Panel id="join" title={t.join}>
            <JoinPanel />
          </Panel>
          <Panel id="machines" title={t.machines}>
            <ClusterPanel />
          </Panel>
          <Panel id="upload" title={t.upload}>
            <UploadPanel />
          </Panel>
          <Panel id="settings" title={t.settings}>
            <SettingsPanel />
          </Panel>
        </aside>
      </div>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <DashboardFeedProvider>
      <Dashboard />
    </DashboardFeedProvider>
  </StrictMode>,
);
