import { useEffect, useState } from 'react';
import { CLOSE_CODES } from '../../../shared/protocol';
import { openRelaySocket } from '../../lib/relay-socket';

/**
 * Keeps a protocol-2 WebSocket open as role "uploader", so the operator sees this phone in the
 * dashboard and the page knows at once when the relay is back. Messages are not needed here.
 * When the operator rotates the PIN the relay closes this socket (CLOSE_CODES.pinRotated): it is
 * not reopened with the old PIN, and `onPinRotated` lets the page ask for the new one.
 */
export function usePresence(pin: string | undefined, onPinRotated?: () => void): boolean {
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!pin) return;
    return openRelaySocket('uploader', pin, {
      onOpen: () => setConnected(true),
      onClose: (_failed, close) => {
        setConnected(false);
        if (close.code !== CLOSE_CODES.pinRotated) return true;
        onPinRotated?.();
        return false;
      },
    });
  }, [pin, onPinRotated]);
  return connected;
}
