import { useEffect, useState } from 'react';
import { openRelaySocket } from '../../lib/relay-socket';

/**
 * Keeps a protocol-2 WebSocket open as role "uploader", so the operator sees this phone in the
 * dashboard and the page knows at once when the relay is back. Messages are not needed here.
 */
export function usePresence(pin: string | undefined): boolean {
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!pin) return;
    return openRelaySocket('uploader', pin, {
      onOpen: () => setConnected(true),
      onClose: () => setConnected(false),
    });
  }, [pin]);
  return connected;
}
