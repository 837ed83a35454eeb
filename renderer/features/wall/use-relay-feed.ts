import { useEffect, useRef, useState } from 'react';
import type { PhotoEvent, ServerMessageV2 } from '../../../shared/protocol';
import { openRelaySocket } from '../../lib/relay-socket';

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
    return openRelaySocket('display', pin, {
      onOpen: () => setOnline(true),
      onMessage: (data) => {
        const message = JSON.parse(data) as ServerMessageV2;
        if (message.type === 'hello') {
          setRefused(false);
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
      },
      onClose: (failedAttempts) => {
        setOnline(false);
        // Refused again and again before opening: most likely the PIN (it may be a restart).
        if (failedAttempts > 2) setRefused(true);
      },
    });
  }, [pin]);

  return {
    photos,
    arrivals: arrivals.current,
    online,
    refused,
    takeArrival: () => arrivals.current.shift(),
  };
}
