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
}

export type ServerMessageV2 =
  | { type: 'hello'; protocol: 2; serverTime: string; role: ClientRole; history: PhotoEvent[] }
  | { type: 'photo'; photo: PhotoEvent }
  | { type: 'removed'; id: string };

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
}

/** A photo as the admin API lists it: the public fields plus moderation and failure state. */
export interface AdminPhoto extends PhotoListItem {
  hidden: boolean;
  approved: boolean;
  width: number | null;
  height: number | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** Operator settings that persist in the store. */
export interface RelaySettings {
  /** 'transparent', 'image' (the uploaded background image) or '#rrggbb': what the cut-outs sent to the walls are composed on. */
  background: string;
  displayMaxEdge: number;
  /** Takes effect at the next start (the model is loaded once). */
  model: string;
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
}
