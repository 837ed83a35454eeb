import { useEffect, useRef, useState } from 'react';
import type { PhotoEvent, ServerMessageV2 } from '../../../shared/protocol';
import { withPin } from '../../lib/pin';

export interface Feed {
  /** Newest first. */
  photos: PhotoEvent[];
  /** Arrivals not yet shown, oldest first: the wall shows these next, then resumes its loop. */
  arrivals: PhotoEvent[];
  online: boolean;
  /** Set when the relay refused the PIN. */
  refused: boolean;
  takeArrival: () => PhotoEvent | undefined;
}

/**
 * Protocol 2 over /ws: history on connect, photo events, removals. Reconnects with exponential
 * backoff and jitter and resynchronises from the hello's history each time.
 */
export function useRelayFeed(pin: string): Feed {
  const [photos, setPhotos] = useState<PhotoEvent[]>([]);
  const [online, setOnline] = useState(false);
  const [refused, setRefused] = useState(false);
  const arrivals = useRef<PhotoEvent[]>([]);
  const [, setTick] = useState(0);

  useEffect(() => {
    let socket: WebSocket | undefined;
    let attempt = 0;
    let timer: number | undefined;
    let stopped = false;
    let opened = false;

    const connect = () => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new WebSocket(
        withPin(`${scheme}://${location.host}/ws?protocol=2&role=display`, pin),
      );
      opened = false;
      socket.onopen = () => {
        opened = true;
        attempt = 0;
        setOnline(true);
      };
      socket.onmessage = (event: MessageEvent<string>) => {
        const message = JSON.parse(event.data) as ServerMessageV2;
        if (message.type === 'hello') {
          setPhotos(message.history);
          const known = new Set(message.history.map((photo) => photo.id));
          arrivals.current = arrivals.current.filter((photo) => known.has(photo.id));
        } else if (message.type === 'photo') {
          setPhotos((current) => [
            message.photo,
            ...current.filter((photo) => photo.id !== message.photo.id),
          ]);
          arrivals.current.push(message.photo);
          setTick((n) => n + 1);
        } else {
          setPhotos((current) => current.filter((photo) => photo.id !== message.id));
          arrivals.current = arrivals.current.filter((photo) => photo.id !== message.id);
        }
      };
      socket.onclose = () => {
        setOnline(false);
        if (stopped) return;
        // A refusal before opening is usually the PIN; keep retrying slowly anyway (it may be a restart).
        if (!opened && attempt > 2) setRefused(true);
        const ceiling = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
        attempt++;
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

  return {
    photos,
    arrivals: arrivals.current,
    online,
    refused,
    takeArrival: () => arrivals.current.shift(),
  };
}
