import { useEffect } from 'react';

/**
 * Keeps the screen on where the Screen Wake Lock API exists (re-acquired when visible again). It
 * exists only in a secure context: a wall opened at a plain-HTTP LAN address has no
 * `navigator.wakeLock` and simply goes without (tests/insecure-context.test.ts).
 */
export function useWakeLock(): void {
  useEffect(() => {
    if (!('wakeLock' in navigator)) return;
    let lock: WakeLockSentinel | undefined;
    const acquire = () => {
      if (document.visibilityState !== 'visible') return;
      void navigator.wakeLock.request('screen').then(
        (sentinel) => {
          lock = sentinel;
        },
        () => undefined,
      );
    };
    acquire();
    document.addEventListener('visibilitychange', acquire);
    return () => {
      document.removeEventListener('visibilitychange', acquire);
      void lock?.release();
    };
  }, []);
}
