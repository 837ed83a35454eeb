import { useEffect, useRef, useState } from 'react';
import { CLOSE_CODES, type PhotoEvent, type ServerMessageV2 } from '../../../shared/protocol';
import {
  forgetWallToken,
  openRelaySocket,
  rememberWallToken,
  type RelayCredential,
} from '../../lib/relay-socket';

/**
 * Connects in a row that fail before a wall with other relays moves on: one failure is a relay
 * restarting (a few seconds), the second, a second or two later, means it is not coming back soon.
 */
const MOVE_AFTER_FAILURES = 2;

/** Why the wall stopped for good (until the page is opened again). */
export type WallStop = 'removed' | 'pinChanged';

export interface Feed {
  /** Newest first. */
  photos: PhotoEvent[];
  /** Arrivals not yet shown, oldest first: the wall shows these next, then resumes its loop. */
  arrivals: PhotoEvent[];
  online: boolean;
  /** Set when the relay refused the PIN (or cannot be reached) again and again. */
  refused: boolean;
  /** Set when the relay said this display's credential is no good any more. */
  stopped: WallStop | undefined;
  /** What cut-out URLs carry: the wall's own token once it has one, else the PIN. */
  credential: RelayCredential;
  /** The relay (http(s) origin) the wall is connected or connecting to; cut-outs load from it. */
  relay: string;
  takeArrival: () => PhotoEvent | undefined;
}

/**
 * A browser cannot read why a WebSocket upgrade was refused, so after a refusal the wall asks
 * the HTTP API with the same credential: the catalog code says whether to keep trying.
 */
async function refusalCode(
  relay: string,
  credential: RelayCredential,
): Promise<string | undefined> {
  const headers: Record<string, string> =
    'wall' in credential ? { 'X-Wall-Token': credential.wall } : { 'X-Event-Pin': credential.pin };
  try {
    const response = await fetch(`${relay}/api/photos?limit=1`, { headers });
    if (response.status !== 401) return undefined;
    const body = (await response.json()) as { code?: string };
    return body.code;
  } catch {
    return undefined; // unreachable: a restart, the Wi-Fi; keep trying
  }
}

/**
 * Protocol 2 over /ws: history on connect, photo events, removals. Reconnects with exponential
 * backoff and jitter and resynchronises from the hello's history each time. A display that joins
 * with the PIN is given its own credential in the hello: it is kept (localStorage, per relay
 * origin) and used from then on, so a PIN rotation or a relay restart does not cut the wall off.
 *
 * Given several relays of one event (`relays`, this page's first: shared/wall-relays.ts), a wall
 * whose relay stops answering (MOVE_AFTER_FAILURES connects in a row refused or unanswered)
 * moves to the next one, and so on round the list: the credential holds on every relay of the
 * event (the PIN and wall credentials are shared through Redis), and so does the history.
 */
export function useRelayFeed(
  start: { pin?: string; wallToken?: string },
  relays: string[] = [location.origin],
): Feed {
  const [photos, setPhotos] = useState<PhotoEvent[]>([]);
  const [online, setOnline] = useState(false);
  const [refused, setRefused] = useState(false);
  const [stopped, setStopped] = useState<WallStop>();
  const [credential, setCredential] = useState<RelayCredential>(() =>
    start.wallToken ? { wall: start.wallToken } : { pin: start.pin ?? '' },
  );
  const held = useRef(credential);
  const [relay, setRelay] = useState(relays[0]!);
  const relayNow = useRef(relay);
  const arrivals = useRef<PhotoEvent[]>([]);
  const [, setTick] = useState(0);

  useEffect(() => {
    let probing = false;
    /** Every photo this page has been told of (history or live). */
    const seen = new Set<string>();
    let greeted = false;
    /** The relays this page's wall token has opened on. */
    const openedOn = new Set<string>();
    /** The token in hand has let this page in at least once (else it came from storage). */
    let tokenWorked = false;
    const use = (next: RelayCredential) => {
      held.current = next;
      setCredential(next);
    };
    const halt = (why: WallStop) => {
      if ('wall' in held.current && why === 'removed') forgetWallToken();
      stop();
      setOnline(false);
      setStopped(why);
    };
    const moveOn = () => {
      const next = relays[(relays.indexOf(relayNow.current) + 1) % relays.length]!;
      relayNow.current = next;
      setRelay(next);
    };
    const stop = openRelaySocket(
      'display',
      () => held.current,
      {
        onOpen: () => {
          if ('wall' in held.current) {
            tokenWorked = true;
            openedOn.add(relayNow.current);
          }
          setOnline(true);
        },
        onMessage: (data) => {
          const message = JSON.parse(data) as ServerMessageV2;
          if (message.type === 'hello') {
            setRefused(false);
            if (message.wallToken) {
              tokenWorked = true;
              openedOn.add(relayNow.current);
              rememberWallToken(message.wallToken);
              use({ wall: message.wallToken });
            }
            setPhotos(message.history);
            const inHistory = new Set(message.history.map((photo) => photo.id));
            arrivals.current = arrivals.current.filter((photo) => inHistory.has(photo.id));
            // Back after a restart, an outage or a move to another relay: what arrived meanwhile
            // goes up as arrivals (oldest first), as it would have live. At the first hello the
            // history is just the loop.
            if (greeted) {
              const waiting = new Set(arrivals.current.map((photo) => photo.id));
              const missed = message.history
                .filter((photo) => !seen.has(photo.id) && !waiting.has(photo.id))
                .reverse();
              arrivals.current.push(...missed);
              if (missed.length) setTick((n) => n + 1);
            }
            for (const photo of message.history) seen.add(photo.id);
            greeted = true;
          } else if (message.type === 'photo') {
            seen.add(message.photo.id);
            setPhotos((current) => [
              message.photo,
              ...current.filter((photo) => photo.id !== message.photo.id),
            ]);
            if (!arrivals.current.some((photo) => photo.id === message.photo.id))
              arrivals.current.push(message.photo);
            setTick((n) => n + 1);
          } else {
            setPhotos((current) => current.filter((photo) => photo.id !== message.id));
            arrivals.current = arrivals.current.filter((photo) => photo.id !== message.id);
          }
        },
        onClose: (failedAttempts, close) => {
          setOnline(false);
          if (close.code === CLOSE_CODES.wallRevoked) {
            halt('removed');
            return false;
          }
          if (close.code === CLOSE_CODES.pinRotated) {
            // Only a wall without a credential of its own (opened before walls had one) gets this.
            halt('pinChanged');
            return false;
          }
          if (failedAttempts > 0 && !probing) {
            probing = true;
            const tried = held.current;
            const triedOn = relayNow.current;
            void refusalCode(triedOn, tried).then((code) => {
              probing = false;
              if (held.current !== tried) return;
              if (code === 'E_WALL_REVOKED' && !tokenWorked && start.pin) {
                // A token kept from an earlier event (another data folder) while this link
                // carries the PIN: join with the PIN again and be given a new one.
                forgetWallToken();
                use({ pin: start.pin });
              } else if (code === 'E_WALL_REVOKED' && relays.length > 1 && !openedOn.has(triedOn)) {
                // A relay this token never opened on may not have heard of it yet (it was issued
                // elsewhere while Redis was away): not a revocation; the wall moves on.
              } else if (code === 'E_WALL_REVOKED') halt('removed');
              else if (code === 'E_PIN_WRONG' || code === 'E_PIN_REQUIRED') halt('pinChanged');
            });
          }
          // Refused again and again before opening: most likely the PIN (it may be a restart).
          if (failedAttempts > 2) setRefused(true);
          if (failedAttempts >= MOVE_AFTER_FAILURES && relays.length > 1) {
            moveOn();
            return 'moved';
          }
          // CLOSE_CODES.disconnectedByOperator, a restart, the network: reconnect.
          return true;
        },
      },
      () => relayNow.current,
    );
    return stop;
    // The starting credential is read once; the socket follows `held` from then on.
  }, []);

  return {
    photos,
    arrivals: arrivals.current,
    online,
    refused,
    stopped,
    credential,
    relay,
    takeArrival: () => arrivals.current.shift(),
  };
}
