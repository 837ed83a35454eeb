import { useEffect, useRef, useState } from 'react';
import type { PhotoEvent } from '../../../shared/protocol';
import { wallRelays } from '../../../shared/wall-relays';
import { messages } from '../../lib/i18n';
import { initialPin } from '../../lib/pin';
import { storedWallToken, withCredential, type RelayCredential } from '../../lib/relay-socket';
import { useRelayFeed, type Feed } from './use-relay-feed';
import { useWakeLock } from './use-wake-lock';

const t = messages();

export interface WallOptions {
  layout: 'spotlight' | 'grid';
  /** Seconds each photo stays before the loop moves on. */
  interval: number;
  /** Cells in the grid. */
  cells: number;
  background: string;
  backgroundImage?: string;
  captions: boolean;
  /** This page's relay, then the others to move to if it dies (`relays=`). */
  relays: string[];
}

/**
 * Options from the URL:
 * ?layout=spotlight|grid&interval=8&cells=9&bg=%23000&bgimage=/x.jpg&captions=0&relays=http://b:8000
 */
export function wallOptions(search = location.search, here = location.origin): WallOptions {
  const params = new URLSearchParams(search);
  const number = (name: string, fallback: number, min: number, max: number) => {
    const value = Number(params.get(name));
    return Number.isFinite(value) && value >= min && value <= max ? value : fallback;
  };
  const colour = params.get('bg') ?? '#0b0f14';
  const image = params.get('bgimage') ?? undefined;
  return {
    layout: params.get('layout') === 'grid' ? 'grid' : 'spotlight',
    interval: number('interval', 8, 2, 600),
    cells: number('cells', 9, 2, 36),
    // Only colours and same-origin paths: the page's CSP allows nothing else anyway.
    background: /^(#[0-9a-f]{3,8}|[a-z]+|transparent)$/i.test(colour) ? colour : '#0b0f14',
    backgroundImage: image && /^\/[\w./-]+$/.test(image) ? image : undefined,
    captions: params.get('captions') !== '0',
    relays: wallRelays(params.get('relays'), here),
  };
}

function Photo({
  photo,
  feed,
  captions,
  className,
}: {
  photo: PhotoEvent;
  feed: Feed;
  captions: boolean;
  className: string;
}) {
  const [loaded, setLoaded] = useState(false);
  // The compact WebP (about a twelfth of the PNG's bytes over the Wi-Fi); the PNG if it fails.
  const [png, setPng] = useState(false);
  return (
    <figure className={`${className} ${loaded ? 'shown' : ''}`} data-photo-id={photo.id}>
      <img
        src={cutoutSource(png ? photo.cutoutUrl : photo.compactUrl, feed.relay, feed.credential)}
        alt=""
        onLoad={() => setLoaded(true)}
        onError={() => setPng(true)}
      />
      {captions && photo.description && <figcaption>{photo.description}</figcaption>}
    </figure>
  );
}

/** From the relay the wall is on now (every relay of the event serves every photo). */
function cutoutSource(route: string, relay: string, credential: RelayCredential): string {
  const path = withCredential(route, credential);
  return relay === location.origin ? path : new URL(path, relay).href;
}

function Spotlight({ feed, options }: { feed: Feed; options: WallOptions }) {
  const [current, setCurrent] = useState<PhotoEvent>();
  const loop = useRef(0);
  const { photos, arrivals } = feed;

  // A new arrival goes up at once.
  useEffect(() => {
    const next = feed.takeArrival();
    if (next) setCurrent(next);
  }, [arrivals.length, photos]);

  // Between arrivals: arrivals still waiting first, then the loop through recent photos resumes.
  useEffect(() => {
    const timer = window.setInterval(() => {
      const arrival = feed.takeArrival();
      if (arrival) {
        setCurrent(arrival);
        return;
      }
      if (photos.length === 0) {
        setCurrent(undefined);
        return;
      }
      loop.current = (loop.current + 1) % photos.length;
      setCurrent(photos[loop.current]);
    }, options.interval * 1000);
    return () => window.clearInterval(timer);
  }, [feed, photos, options.interval]);

  const shown = current && photos.some((photo) => photo.id === current.id) ? current : photos[0];
  return (
    <>
      <div className="spotlight">
        {shown && (
          <Photo
            key={shown.id}
            photo={shown}
            feed={feed}
            captions={options.captions}
            className="spot"
          />
        )}
      </div>
      <Status online={feed.online} refused={feed.refused} />
    </>
  );
}

function Grid({ feed, options }: { feed: Feed; options: WallOptions }) {
  const [offset, setOffset] = useState(0);
  const { photos } = feed;
  useEffect(() => {
    setOffset(0); // a new arrival: back to the newest
  }, [photos[0]?.id]);
  useEffect(() => {
    const timer = window.setInterval(() => {
      setOffset((value) => (photos.length > options.cells ? (value + 1) % photos.length : 0));
    }, options.interval * 1000);
    return () => window.clearInterval(timer);
  }, [photos.length, options.cells, options.interval]);
  const visible = Array.from(
    { length: Math.min(options.cells, photos.length) },
    (_, i) => photos[(i + offset) % photos.length]!,
  );
  const columns = Math.ceil(Math.sqrt(options.cells));
  return (
    <>
      <div className="grid" data-columns={columns}>
        {visible.map((photo) => (
          <Photo
            key={photo.id}
            photo={photo}
            feed={feed}
            captions={options.captions}
            className="cell"
          />
        ))}
      </div>
      <Status online={feed.online} refused={feed.refused} />
    </>
  );
}

function Status({ online, refused }: { online: boolean; refused: boolean }) {
  if (online) return null;
  return (
    <div className="status" role="status" title={refused ? t.wallRefused : t.wallReconnecting}>
      {refused ? 'PIN?' : '…'}
    </div>
  );
}

/** A message that replaces the wall (plain text: nothing here is HTML). */
function Notice({ text, reason }: { text: string; reason: string }) {
  return (
    <div className="status big" role="alert" data-reason={reason}>
      {text}
    </div>
  );
}

function LiveWall({
  start,
  options,
}: {
  start: { pin?: string; wallToken?: string };
  options: WallOptions;
}) {
  const feed = useRelayFeed(start, options.relays);
  if (feed.stopped === 'removed') return <Notice text={t.wallRemoved} reason="removed" />;
  if (feed.stopped === 'pinChanged') return <Notice text={t.wallPinChanged} reason="pin-changed" />;
  return options.layout === 'grid' ? (
    <Grid feed={feed} options={options} />
  ) : (
    <Spotlight feed={feed} options={options} />
  );
}

export function Wall() {
  // The wall's own credential (given by this relay when it first joined) before the PIN: it
  // outlives a PIN rotation.
  const [start] = useState(() => ({ wallToken: storedWallToken(), pin: initialPin() }));
  const options = wallOptions();
  useWakeLock();
  useEffect(() => {
    document.body.style.background = options.background;
    if (options.backgroundImage) {
      document.body.style.backgroundImage = `url("${options.backgroundImage}")`;
      document.body.style.backgroundSize = 'cover';
    }
    document.body.dataset.layout = options.layout;
    document.body.style.setProperty('--columns', String(Math.ceil(Math.sqrt(options.cells))));
  }, [options.background, options.backgroundImage, options.layout, options.cells]);
  if (!start.pin && !start.wallToken) return <Notice text={t.wallNeedsPin} reason="no-pin" />;
  return <LiveWall start={start} options={options} />;
}
