import { t } from '../../lib/dashboard-i18n';
import { format } from '../../lib/i18n';
import { useDashboardFeed } from '../../lib/use-dashboard-feed';
import { diskState, diskWords, formatBytes } from './disk';

/**
 * A warning at the top of the page while the data folder's disk is almost full, and a stronger
 * one once the relay refuses uploads for lack of space (under MIN_FREE_DISK_MB).
 */
export function DiskWarning() {
  const { metrics } = useDashboardFeed();
  if (!metrics) return null;
  const { disk } = metrics;
  const state = diskState(disk);
  if (state === 'ok') return null;
  const values = { free: formatBytes(disk.freeBytes), min: formatBytes(disk.minFreeBytes) };
  return (
    <p className="disk-warning" role="alert" data-testid="disk-warning" data-state={state}>
      {state === 'refusing'
        ? format(diskWords.diskRefusing, values)
        : disk.minFreeBytes > 0
          ? `${format(t.diskLow, values)}. ${format(diskWords.diskStopsAt, values)}`
          : format(t.diskLow, values)}
    </p>
  );
}
