/**
 * The relay's wire protocol, shared by the relay and the pages.
 *
 * Two WebSocket protocols share `/ws`:
 * - the original one (no query parameter besides `pin`): every message is an OriginalImageMessage,
 *   byte-compatible with the first Python/FastAPI relay;
 * - protocol 2 (`/ws?pin=…&protocol=2[&role=display|uploader|dashboard]`): typed messages with
 *   image URLs instead of base64 and the recent history on connect.
 */

export type PhotoStatus = 'queued' | 'processing' | 'done' | 'failed';

/** `GET /api/photos` items (the original API's fields). */
export interface PhotoListItem {
  id: string;
  status: PhotoStatus;
  /** When the upload was received, ISO 8601 UTC: the same value the WebSocket message carries. */
  timestamp: string;
  description: string;
  originalFilename: string;
  processingTime: number | null;
}

/** `POST /upload/` 200 body. */
export interface UploadSuccess {
  status: 'success';
  processingTime: number;
  message: 'Image processed and broadcast successfully';
  id: string;
}

/** The original protocol's only message. */
export interface OriginalImageMessage {
  imageData: string;
  timestamp: string;
  metadata: {
    description: string;
    processingTime: number;
    originalFilename: string;
  };
}

export type ClientRole = 'display' | 'uploader' | 'dashboard';

/** A finished photo as protocol 2 describes it: URLs relative to the relay, PIN not included. */
export interface PhotoEvent {
  id: string;
  timestamp: string;
  description: string;
  originalFilename: string;
  processingTime: number;
  width: number;
  height: number;
  /** Display-size cut-out (PNG with alpha). */
  cutoutUrl: string;
  /**
   * The same cut-out as WebP with alpha, about a twelfth of the PNG's bytes (what the walls
   * load, falling back to `cutoutUrl` if it fails; `image/webp`, strong ETag).
   */
  compactUrl: string;
}

export type ServerMessageV2 =
  | {
      type: 'hello';
      protocol: 2;
      serverTime: string;
      role: ClientRole;
      history: PhotoEvent[];
      /**
       * A display that joined with the event PIN gets a credential of its own: it reconnects and
       * fetches cut-outs with `?wall=<wallToken>`, so a guest-PIN rotation does not cut it off.
       */
      wallToken?: string;
    }
  | { type: 'photo'; photo: PhotoEvent }
  | { type: 'removed'; id: string };

/**
 * WebSocket close codes the relay uses (4000–4999 are the application's range, RFC 6455 §7.4.2);
 * the pages explain each one in words.
 */
export const CLOSE_CODES = {
  /** The operator pressed Disconnect; the client may reconnect. */
  disconnectedByOperator: 4000,
  /** The guest PIN was rotated: sockets opened with the old PIN are closed; ask for the new one. */
  pinRotated: 4001,
  /** The operator revoked this wall's credential: do not reconnect with it. */
  wallRevoked: 4002,
} as const;

/**
 * Messages only the dashboard role receives (`/ws?protocol=2&role=dashboard&token=<admin token>`,
 * loopback only): the dashboard's live state, pushed instead of polled. Like every protocol-2
 * socket it first gets the `hello`, then `admin.snapshot`, and also the walls' `photo`/`removed`.
 */
export type DashboardMessage =
  | {
      type: 'admin.snapshot';
      overview: AdminOverview;
      metrics: AdminMetrics;
      clients: ClientInfo[];
      walls: WallInfo[];
      /** Newest first, at most 200. */
      photos: AdminPhoto[];
    }
  /** A photo was added or changed (status, hidden, approved, attempts). */
  | { type: 'admin.photo'; photo: AdminPhoto }
  | { type: 'admin.photo-removed'; id: string }
  | { type: 'admin.clients'; clients: ClientInfo[]; walls: WallInfo[] }
  /** Every 2 s. */
  | { type: 'admin.metrics'; metrics: AdminMetrics }
  /** The PIN was rotated or a setting changed. */
  | { type: 'admin.overview'; overview: AdminOverview };

/** A display's own credential, as the admin API lists it (`GET /admin/api/walls`). */
export interface WallInfo {
  id: string;
  /** The user agent of the display that received it. */
  label: string;
  createdAt: string;
  lastSeenAt: string;
  /** Connected right now. */
  connected: boolean;
}

export const PROTOCOL_V2 = 2;
export const HISTORY_ON_CONNECT = 50;

/** A connected WebSocket client as the admin API lists it. */
export interface ClientInfo {
  id: string;
  role: ClientRole;
  protocol: 1 | 2;
  address: string;
  userAgent: string;
  connectedAt: string;
  lastSeenAt: string;
  /** The wall credential this socket was opened with (null: opened with the PIN). */
  wallId: string | null;
}

/** A photo as the admin API lists it: the public fields plus moderation and failure state. */
export interface AdminPhoto extends PhotoListItem {
  hidden: boolean;
  approved: boolean;
  width: number | null;
  height: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Processing attempts started (a photo in progress when the process died twice is failed). */
  attempts: number;
}

/** Operator settings that persist in the store. */
export interface RelaySettings {
  /** 'transparent', 'image' (the uploaded background image) or '#rrggbb': what the cut-outs sent to the walls are composed on. */
  background: string;
  displayMaxEdge: number;
  /** Takes effect at the next start (the model is loaded once). */
  model: string;
  /** 'quality' (the adaptive pipeline) or 'fast' (one pass): for the photos processed next. */
  cutoutMode: 'quality' | 'fast';
}

export interface AdminOverview {
  uploaderUrls: string[];
  displayUrls: string[];
  pin: string | null;
  /** The model running now. */
  model: string;
  approvalMode: boolean;
  settings: RelaySettings;
  hasBackgroundImage: boolean;
  dataDir: string;
}

export interface AdminMetrics {
  connections: Record<ClientRole, number>;
  queue: { pending: number; limit: number };
  uploads: { ok: number; failed: number; byCode: Record<string, number> };
  processingMs: { count: number; p50: number | null; p95: number | null };
  memory: { rss: number; heapUsed: number };
  uptimeSeconds: number;
  model: string;
  /**
   * Free and total bytes on the data folder's disk, and the free space under which uploads are
   * refused (507 E_DISK_FULL; MIN_FREE_DISK_MB, 0 when the guard is off).
   */
  disk: { freeBytes: number; totalBytes: number; minFreeBytes: number };
  /** This data folder's life: how often it was started, what the last start found. */
  lifecycle: {
    startedAt: string;
    /** Starts of this data folder so far, this one included. */
    starts: number;
    /** Photos left in line by the previous run and processed at this start. */
    resumed: number;
    /** Photos marked failed at this start because they were in progress at two crashes. */
    crashLooped: number;
  };
}

/** `POST /admin/api/export-links`: a single-use address the browser downloads to disk. */
export interface ExportLink {
  /** Relative to the relay, e.g. `/admin/export.zip?ticket=…`; valid for 60 s, once. */
  url: string;
}
