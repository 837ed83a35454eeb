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
   * Return false to stop reconnecting (the relay said this credential is no good any more);
   * anything else reconnects.
   */
  onClose?: (failedAttempts: number, close: RelayClose) => unknown;
}

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
 * `onClose` returns false. `credential` is read at every connect (a wall switches from the PIN to
 * its own token). Returns `stop`.
 */
export function openRelaySocket(
  role: 'display' | 'uploader' | 'dashboard',
  credential: string | (() => RelayCredential),
  handlers: RelaySocketHandlers,
): () => void {
  let socket: WebSocket | undefined;
  let timer: number | undefined;
  let failed = 0;
  let stopped = false;
  const current = () => (typeof credential === 'string' ? { pin: credential } : credential());
  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(
      withCredential(`${scheme}://${location.host}/ws?protocol=2&role=${role}`, current()),
    );
    let opened = false;
    socket.onopen = () => {
      if (stopped) return;
      opened = true;
      failed = 0;
      handlers.onOpen?.();
    };
    socket.onmessage = (event: MessageEvent<string>) => {
      if (!stopped) handlers.onMessage?.(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
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
