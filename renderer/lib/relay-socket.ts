import { withPin } from './pin';

export interface RelaySocketHandlers {
  onOpen?: () => void;
  onMessage?: (data: string) => void;
  /** `failedAttempts` counts the closes in a row without a successful open. */
  onClose?: (failedAttempts: number) => void;
}

/**
 * A protocol-2 WebSocket to the relay that reconnects forever with exponential backoff and full
 * jitter (so a relay restart is not met by every display at the same instant). Returns `stop`.
 */
export function openRelaySocket(
  role: 'display' | 'uploader' | 'dashboard',
  pin: string,
  handlers: RelaySocketHandlers,
): () => void {
  let socket: WebSocket | undefined;
  let timer: number | undefined;
  let failed = 0;
  let stopped = false;
  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(withPin(`${scheme}://${location.host}/ws?protocol=2&role=${role}`, pin));
    let opened = false;
    socket.onopen = () => {
      opened = true;
      failed = 0;
      handlers.onOpen?.();
    };
    socket.onmessage = (event: MessageEvent<string>) => handlers.onMessage?.(event.data);
    socket.onclose = () => {
      if (!opened) failed++;
      handlers.onClose?.(failed);
      if (stopped) return;
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
