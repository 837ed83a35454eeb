import {
  createContext,
  createElement,
  useContext,
  useEffect,
  useReducer,
  useState,
  type ReactNode,
} from 'react';
import type {
  AdminMetrics,
  AdminOverview,
  AdminPhoto,
  ClientInfo,
  DashboardMessage,
  WallInfo,
} from '../../shared/protocol';
import { AdminApiError, adminFetch, adminToken } from './admin-api';

/** The most photos the dashboard keeps (the snapshot carries at most 200). */
const MAX_PHOTOS = 200;

export type FeedStatus = 'connecting' | 'live' | 'reconnecting' | 'refused';

/** The dashboard's live state: the relay pushes it over one WebSocket, nothing is polled. */
export interface DashboardFeed {
  status: FeedStatus;
  /** Set once the first snapshot arrived (the state then outlives reconnects). */
  overview?: AdminOverview;
  metrics?: AdminMetrics;
  clients: ClientInfo[];
  walls: WallInfo[];
  /** Newest first. */
  photos: AdminPhoto[];
}

type Action = DashboardMessage | { type: 'status'; status: FeedStatus };

const initial: DashboardFeed = { status: 'connecting', clients: [], walls: [], photos: [] };

const newestFirst = (a: AdminPhoto, b: AdminPhoto) =>
  Date.parse(b.timestamp) - Date.parse(a.timestamp);

/** Upsert by id, newest first by timestamp. */
function upsert(photos: AdminPhoto[], photo: AdminPhoto): AdminPhoto[] {
  const rest = photos.filter((item) => item.id !== photo.id);
  const at = rest.findIndex((item) => newestFirst(photo, item) <= 0);
  const next = at === -1 ? [...rest, photo] : [...rest.slice(0, at), photo, ...rest.slice(at)];
  return next.slice(0, MAX_PHOTOS);
}

export function feedReducer(state: DashboardFeed, action: Action): DashboardFeed {
  switch (action.type) {
    case 'status': {
      // Before the first snapshot there is nothing to be reconnecting to: still connecting.
      const status =
        action.status === 'reconnecting' && !state.overview ? 'connecting' : action.status;
      return state.status === status ? state : { ...state, status };
    }
    case 'admin.snapshot':
      // After a reconnect the snapshot replaces everything: nothing missed while away lingers.
      return {
        status: 'live',
        overview: action.overview,
        metrics: action.metrics,
        clients: action.clients,
        walls: action.walls,
        photos: [...action.photos].sort(newestFirst).slice(0, MAX_PHOTOS),
      };
    case 'admin.photo':
      return { ...state, photos: upsert(state.photos, action.photo) };
    case 'admin.photo-removed':
      return { ...state, photos: state.photos.filter((photo) => photo.id !== action.id) };
    case 'admin.clients':
      return { ...state, clients: action.clients, walls: action.walls };
    case 'admin.metrics':
      return { ...state, metrics: action.metrics };
    case 'admin.overview':
      return { ...state, overview: action.overview };
    default:
      // A message type this page does not know yet (a newer relay): ignored.
      return state;
  }
}

const DASHBOARD_MESSAGES = new Set<string>([
  'admin.snapshot',
  'admin.photo',
  'admin.photo-removed',
  'admin.clients',
  'admin.metrics',
  'admin.overview',
]);

/**
 * One dashboard WebSocket (`/ws?protocol=2&role=dashboard&token=…`, loopback only), reconnecting
 * forever with exponential backoff and full jitter, like the walls' socket (relay-socket.ts).
 * When it cannot open, one admin API call tells a refused token from a relay that is away.
 * Returns `stop`.
 */
function openDashboardSocket(token: string, dispatch: (action: Action) => void): () => void {
  let socket: WebSocket | undefined;
  let timer: number | undefined;
  let failed = 0;
  let stopped = false;
  const schedule = () => {
    const ceiling = Math.min(30_000, 500 * 2 ** Math.min(failed, 6));
    timer = window.setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
  };
  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(
      `${scheme}://${location.host}/ws?protocol=2&role=dashboard&token=${encodeURIComponent(token)}`,
    );
    let opened = false;
    socket.onopen = () => {
      opened = true;
      failed = 0;
    };
    socket.onmessage = (event: MessageEvent<string>) => {
      let message: { type?: unknown };
      try {
        message = JSON.parse(event.data) as { type?: unknown };
      } catch {
        return;
      }
      if (typeof message.type === 'string' && DASHBOARD_MESSAGES.has(message.type)) {
        dispatch(message as DashboardMessage);
      }
    };
    socket.onclose = () => {
      if (stopped) return;
      dispatch({ type: 'status', status: 'reconnecting' });
      if (opened) {
        schedule();
        return;
      }
      failed++;
      // Never opened: a wrong token and a relay that is restarting look the same from here.
      void adminFetch('/overview').then(schedule, (error: unknown) => {
        if (stopped) return;
        if (error instanceof AdminApiError && (error.status === 401 || error.status === 403)) {
          dispatch({ type: 'status', status: 'refused' });
        } else schedule();
      });
    };
  };
  connect();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    socket?.close();
  };
}

const FeedContext = createContext<DashboardFeed | undefined>(undefined);

/** Opens the page's one dashboard socket and hands its state to every panel below it. */
export function DashboardFeedProvider({ children }: { children: ReactNode }) {
  const [token] = useState(adminToken);
  const [state, dispatch] = useReducer(
    feedReducer,
    token ? initial : { ...initial, status: 'refused' },
  );
  useEffect(() => {
    if (!token) return;
    return openDashboardSocket(token, dispatch);
  }, [token]);
  return createElement(FeedContext.Provider, { value: state }, children);
}

/** The live dashboard state (inside DashboardFeedProvider). */
export function useDashboardFeed(): DashboardFeed {
  const feed = useContext(FeedContext);
  if (!feed) throw new Error('useDashboardFeed needs a DashboardFeedProvider above it.');
  return feed;
}
