import { useEffect, useState } from 'react';
import { withPin } from '../../lib/pin';

/**
 * Keeps a protocol-2 WebSocket open as role "uploader", so the operator sees this phone in the
 * dashboard and the page knows at once when the relay is back. Messages are not needed here.
 */
export function usePresence(pin: string | undefined): boolean {
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!pin) return;
    let socket: WebSocket | undefined;
    let timer: number | undefined;
    let attempt = 0;
    let stopped = false;
    const connect = () => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new WebSocket(
        withPin(`${scheme}://${location.host}/ws?protocol=2&role=uploader`, pin),
      );
      socket.onopen = () => {
        attempt = 0;
        setConnected(true);
      };
      socket.onclose = () => {
        setConnected(false);
        if (stopped) return;
        const ceiling = Math.min(30_000, 1000 * 2 ** Math.min(attempt++, 5));
        timer = window.setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
      };
    };
    connect();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      socket?.close();
    };
  }, [pin]);
  return connected;
}
