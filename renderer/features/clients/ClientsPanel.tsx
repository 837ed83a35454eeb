import { useCallback } from 'react';
import type { ClientInfo } from '../../../shared/protocol';
import { adminFetch, adminJson } from '../../lib/admin-api';
import { usePolling } from '../../lib/use-polling';
import { t } from '../../lib/dashboard-i18n';

const time = (iso: string) => new Date(iso).toLocaleTimeString();

/** Every connected display, uploader and dashboard; disconnect one. */
export function ClientsPanel() {
  const load = useCallback(() => adminJson<ClientInfo[]>('/clients'), []);
  const { data, error, refresh } = usePolling(load, 2000);
  if (error) return <p className="error">{error}</p>;
  if (!data) return <p className="muted">{t.loading}</p>;
  if (data.length === 0) return <p className="muted">{t.noClients}</p>;
  return (
    <table className="clients">
      <thead>
        <tr>
          <th>{t.role}</th>
          <th>{t.address}</th>
          <th>{t.device}</th>
          <th>{t.connected}</th>
          <th>{t.lastSeen}</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {data.map((client) => (
          <tr key={client.id} data-role={client.role}>
            <td>{client.role}</td>
            <td>{client.address}</td>
            <td className="device" title={client.userAgent}>
              {client.userAgent || '—'}
            </td>
            <td>{time(client.connectedAt)}</td>
            <td>{time(client.lastSeenAt)}</td>
            <td>
              <button
                type="button"
                onClick={() =>
                  void adminFetch(`/clients/${client.id}`, { method: 'DELETE' }).then(refresh)
                }
              >
                {t.disconnect}
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
