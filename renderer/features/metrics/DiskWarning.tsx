import { t } from '../../lib/dashboard-i18n';
import { format } from '../../lib/i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';
import { formatBytes, LOW_DISK_BYTES } from './disk';

/** A warning at the top of the page while the data folder's disk is almost full. */
export function DiskWarning() {
  const { metrics } = useDashboardFeed();
  if (!metrics || metrics.disk.freeBytes >= LOW_DISK_BYTES) return null;
  return (
    <p className="disk-warning" role="alert" data-testid="disk-warning">
      {format(t.diskLow, { free: formatBytes(metrics.disk.freeBytes) })}
    </p>
  );
}
