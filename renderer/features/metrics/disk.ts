import type { AdminMetrics } from '../../../shared/protocol';

/** Under this much free space on the data folder's disk the dashboard warns. */
export const LOW_DISK_BYTES = 1024 ** 3;

export type DiskState = 'ok' | 'low' | 'refusing';

/**
 * `refusing`: under the relay's minimum (MIN_FREE_DISK_MB), uploads get 507 E_DISK_FULL.
 * `low`: under 1 GB, or under twice the minimum when that is more, so the operator is warned
 * well before guests are refused.
 */
export function diskState(disk: AdminMetrics['disk']): DiskState {
  if (disk.minFreeBytes > 0 && disk.freeBytes < disk.minFreeBytes) return 'refusing';
  if (disk.freeBytes < Math.max(LOW_DISK_BYTES, 2 * disk.minFreeBytes)) return 'low';
  return 'ok';
}

const en = {
  diskRefusing:
    'Disk full: {free} free, under the minimum of {min}. Uploads are refused until space is freed on the data folder’s disk.',
  diskStopsAt: 'Uploads stop below {min}.',
};
const ja: typeof en = {
  diskRefusing:
    'ディスクがいっぱいです: 残り {free}（最低 {min}）。データフォルダのディスクに空きができるまでアップロードは拒否されます。',
  diskStopsAt: '{min} を下回るとアップロードを受け付けません。',
};

/** The disk warning's own words (the dashboard's language rule: Japanese for a Japanese browser). */
export const diskWords: typeof en =
  typeof navigator !== 'undefined' &&
  navigator.languages.some((language) => language.toLowerCase().startsWith('ja'))
    ? ja
    : en;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${Math.round(bytes / 1024 ** 2)} MB`;
  return `${Math.round(bytes / 1024)} kB`;
}
