import { useState } from 'react';
import { adminFetch } from '../../lib/admin-api';
import { t } from '../../lib/dashboard-i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';

const time = (iso: string) => new Date(iso).toLocaleTimeString();
const dateTime = (iso: string) => new Date(iso).toLocaleString();
/** Wall ids are long; the first characters tell them apart on one screen. */
const shortId = (id: string) => id.slice(0, 8);

/**
 * Every connected display, uploader and dashboard (disconnect one), and every display credential
 * (revoke one: that display must join again with the PIN).
 */
export function ClientsPanel() {
  const { overview, clients, walls } = useDashboardFeed();
  const [error, setError] = useState<string>();
  // The list itself changes when the relay pushes the new one.
  const remove = (path: string) => {
    setError(undefined);
    adminFetch(path, { method: 'DELETE' }).catch((reason: unknown) =>
      setError(reason instanceof Error ? reason.message : String(reason)),
    );
  };
  if (!overview) return <p className="muted">{t.loading}</p>;
  return (
    <div className="clients-panel">
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {clients.length === 0 ? (
        <p className="muted">{t.noClients}</p>
      ) : (
        <table className="clients">
          <thead>
            <tr>
              <th>{t.role}</th>
              <th>{t.address}</th>
              <th>{t.device}</th>
              <th>{t.connected}</th>
              <th>{t.lastSeen}</th>
              <th>{t.wall}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {clients.map((client) => (
              <tr key={client.id} data-role={client.role} data-client-id={client.id}>
                <td>{client.role}</td>
                <td>{client.address}</td>
                <td className="device" title={client.userAgent}>
                  {client.userAgent || '—'}
                </td>
                <td>{time(client.connectedAt)}</td>
                <td>{time(client.lastSeenAt)}</td>
                <td>
                  {client.wallId ? (
                    <code title={client.wallId}>{shortId(client.wallId)}</code>
                  ) : (
                    '—'
                  )}
                </td>
                <td>
                  <button
                    type="button"
                    onClick={() => remove(`/clients/${encodeURIComponent(client.id)}`)}
                  >
                    {t.disconnect}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>{t.walls}</h3>
      {walls.length === 0 ? (
        <p className="muted small">{t.noWalls}</p>
      ) : (
        <table className="clients walls">
          <thead>
            <tr>
              <th>{t.wall}</th>
              <th>{t.label}</th>
              <th>{t.created}</th>
              <th>{t.lastSeen}</th>
              <th>{t.online}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {walls.map((wall) => (
              <tr key={wall.id} data-wall-id={wall.id} data-connected={wall.connected}>
                <td>
                  <code title={wall.id}>{shortId(wall.id)}</code>
                </td>
                <td className="device" title={wall.label}>
                  {wall.label || '—'}
                </td>
                <td>{dateTime(wall.createdAt)}</td>
                <td>{time(wall.lastSeenAt)}</td>
                <td>
                  <span className={wall.connected ? 'dot on' : 'dot'} aria-hidden="true" />
                  {wall.connected ? t.yes : t.no}
                </td>
                <td>
                  <button
                    type="button"
                    className="danger"
                    title={t.revokeTitle}
                    onClick={() => remove(`/walls/${encodeURIComponent(wall.id)}`)}
                  >
                    {t.revoke}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
