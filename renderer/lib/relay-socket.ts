import { socketOrigin } from '../../shared/wall-relays';
import { withPin } from './pin';

/** What a guest socket presents: the event PIN, or a display's own credential (`wallToken`). */
export type RelayCredential = { pin: string } | { wall: string };

/** A relay URL carrying the credential as a query parameter (<img> and WebSocket set no headers). */
export function withCredential(url: string, credential: RelayCredential): string {
  if ('pin' in credential) return withPin(url, credential.pin);
  return `${url}${url.includes('?') ? '&' : '?'}wall=${encodeURIComponent(credential.wall)}`;
}

export interface RelayClose {
  /** Closes in a row without a successful open (0: this socket had opened). */
  failedAttempts: number;
  /** The WebSocket close code (shared/protocol.ts CLOSE_CODES; 1006 when refused or unreachable). */
  code: number;
  reason: string;
}

export interface RelaySocketHandlers {
  onOpen?: () => void;
  onMessage?: (data: string) => void;
  /**
   * Return false to stop reconnecting (the relay said this credential is no good any more),
   * 'moved' when the caller has chosen another relay (tried at once the first time); anything
   * else reconnects with backoff.
   */
  onClose?: (failedAttempts: number, close: RelayClose) => unknown;
}

/**
 * A socket not open after this long is given up (and counts as a failure): a relay whose machine
 * vanished from the Wi-Fi answers nothing at all, and the browser's own wait is minutes long.
 */
const CONNECT_TIMEOUT_MS = 8000;
/** Failures in a row after which a move to another relay waits its backoff like a reconnect. */
const MOVE_AT_ONCE_UNTIL = 3;

const RELAY_ORIGIN_KEY = (origin: string) => `photo-relay.wall-token:${origin}`;

/** The wall credential this display was given by the relay at this origin, if any. */
export function storedWallToken(origin = location.origin): string | undefined {
  return localStorage.getItem(RELAY_ORIGIN_KEY(origin)) ?? undefined;
}

export function rememberWallToken(token: string, origin = location.origin): void {
  localStorage.setItem(RELAY_ORIGIN_KEY(origin), token);
}

export function forgetWallToken(origin = location.origin): void {
  localStorage.removeItem(RELAY_ORIGIN_KEY(origin));
}

/**
 * A protocol-2 WebSocket to the relay that reconnects with exponential backoff and full jitter (so
 * a relay restart is not met by every display at the same instant), until stopped or until
 * `onClose` returns false. `credential` and `relay` (the http(s) origin to connect to: this page's
 * unless a wall has moved) are read at every connect. Returns `stop`.
 */
export function openRelaySocket(
  role: 'display' | 'uploader' | 'dashboard',
  credential: string | (() => RelayCredential),
  handlers: RelaySocketHandlers,
  relay: () => string = () => location.origin,
): () => void {
  let socket: WebSocket | undefined;
  let timer: number | undefined;
  let failed = 0;
  let stopped = false;
  const current = () => (typeof credential === 'string' ? { pin: credential } : credential());
  const connect = () => {
    const opening = new WebSocket(
      withCredential(`${socketOrigin(relay())}/ws?protocol=2&role=${role}`, current()),
    );
    socket = opening;
    let opened = false;
    const giveUp = window.setTimeout(() => opening.close(), CONNECT_TIMEOUT_MS);
    opening.onopen = () => {
      window.clearTimeout(giveUp);
      if (stopped) return;
      opened = true;
      failed = 0;
      handlers.onOpen?.();
    };
    opening.onmessage = (event: MessageEvent<string>) => {
      if (!stopped) handlers.onMessage?.(event.data);
    };
    opening.onclose = (event: CloseEvent) => {
      window.clearTimeout(giveUp);
      // Stopped by the caller: a late close must not overwrite the state of a newer socket.
      if (stopped) return;
      if (!opened) failed++;
      const again = handlers.onClose?.(failed, {
        failedAttempts: failed,
        code: event.code,
        reason: event.reason,
      });
      if (again === false) {
        stopped = true;
        return;
      }
      // The first move is tried at once; when every relay keeps failing, the backoff holds
      // (the count of failures goes on across moves).
      if (again === 'moved' && failed <= MOVE_AT_ONCE_UNTIL) {
        timer = window.setTimeout(connect, 100 + Math.random() * 400);
        return;
      }
      const ceiling = Math.min(30_000, 500 * 2 ** Math.min(failed, 6));
      timer = window.setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
    };
  };
  connect();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    socket?.close();
  };
}
