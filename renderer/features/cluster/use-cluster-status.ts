import { useEffect, useState } from 'react';
import type { ClusterStatus } from '../../../shared/cluster';
import { adminJson } from '../../lib/admin-api';

export const CLUSTER_POLL_MS = 2000;

export interface ClusterPoll {
  /** The last answer (kept while a later request fails, so the panel does not flicker). */
  status?: ClusterStatus;
  /** Why the last request failed; cleared by the next answer. */
  error?: string;
}

/**
 * `GET /admin/api/cluster` every 2 s while the page is visible. The machines of an event are
 * not part of the dashboard's pushed feed (they live in Redis, not in this relay), so this one
 * panel asks. One request at a time: the next is scheduled when the last has answered. A hidden
 * page asks nothing; it asks at once when shown again. Unmounting stops the timer and aborts the
 * request in flight.
 */
export function useClusterStatus(intervalMs = CLUSTER_POLL_MS): ClusterPoll {
  const [poll, setPoll] = useState<ClusterPoll>({});
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let inFlight: AbortController | undefined;

    const schedule = () => {
      if (stopped || document.visibilityState !== 'visible' || timer || inFlight) return;
      timer = setTimeout(() => void ask(), intervalMs);
    };
    const ask = async () => {
      timer = undefined;
      if (stopped || inFlight) return;
      const controller = new AbortController();
      inFlight = controller;
      try {
        const status = await adminJson<ClusterStatus>('/cluster', { signal: controller.signal });
        // Unmounting aborts the request: nothing is set after that.
        if (!controller.signal.aborted) setPoll({ status });
      } catch (reason) {
        if (!controller.signal.aborted) {
          const error = reason instanceof Error ? reason.message : String(reason);
          setPoll((last) => ({ status: last.status, error }));
        }
      } finally {
        inFlight = undefined;
      }
      schedule();
    };
    const onVisibility = () => {
      if (document.visibilityState !== 'visible') {
        clearTimeout(timer);
        timer = undefined;
      } else if (!timer && !inFlight) {
        void ask();
      }
    };

    document.addEventListener('visibilitychange', onVisibility);
    if (document.visibilityState === 'visible') void ask();
    return () => {
      stopped = true;
      clearTimeout(timer);
      inFlight?.abort();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [intervalMs]);
  return poll;
}
