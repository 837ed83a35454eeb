import { useCallback, useEffect, useState } from 'react';

/** Polls `load` every `intervalMs`; `refresh` runs it now (after an action). */
export function usePolling<T>(load: () => Promise<T>, intervalMs: number) {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const refresh = useCallback(() => {
    void load().then(
      (value) => {
        setData(value);
        setError(undefined);
      },
      (reason: unknown) => setError(reason instanceof Error ? reason.message : String(reason)),
    );
  }, [load]);
  useEffect(() => {
    refresh();
    const timer = window.setInterval(refresh, intervalMs);
    return () => window.clearInterval(timer);
  }, [refresh, intervalMs]);
  return { data, error, refresh };
}
