import type { RawImage } from './raw-image.ts';

/**
 * EXIF orientation as index arithmetic, so the pixels never need a separate rotate pass: upright
 * pixel (u, v) lives at stored pixel index `base + u * du + v * dv`.
 */
export interface OrientedView {
  /** Upright size. */
  width: number;
  height: number;
  base: number;
  du: number;
  dv: number;
}

/** Stored (x, y) of upright (u, v) for each EXIF orientation (TIFF 6.0 / EXIF 2.3 table). */
const STORED_OF: Record<number, (u: number, v: number, w: number, h: number) => [number, number]> =
  {
    1: (u, v) => [u, v],
    2: (u, v, w) => [w - 1 - u, v],
    3: (u, v, w, h) => [w - 1 - u, h - 1 - v],
    4: (u, v, _w, h) => [u, h - 1 - v],
    5: (u, v) => [v, u],
    6: (u, v, _w, h) => [v, h - 1 - u],
    7: (u, v, w, h) => [w - 1 - v, h - 1 - u],
    8: (u, v, w) => [w - 1 - v, u],
  };

export function orientationView(
  orientation: number,
  storedWidth: number,
  storedHeight: number,
): OrientedView {
  const map = STORED_OF[orientation] ?? STORED_OF[1]!;
  const swaps = orientation >= 5 && orientation <= 8;
  const index = (u: number, v: number) => {
    const [x, y] = map(u, v, storedWidth, storedHeight);
    return y * storedWidth + x;
  };
  const base = index(0, 0);
  return {
    width: swaps ? storedHeight : storedWidth,
    height: swaps ? storedWidth : storedHeight,
    base,
    du: index(1, 0) - base,
    dv: index(0, 1) - base,
  };
}

/** An upright copy of a (small) raw image. */
export function orientRaw(image: RawImage, orientation: number): RawImage {
  if (orientation === 1) return image;
  const view = orientationView(orientation, image.width, image.height);
  const { channels } = image;
  const out = new Uint8Array(image.data.length);
  let o = 0;
  for (let v = 0; v < view.height; v++) {
    let p = view.base + v * view.dv;
    for (let u = 0; u < view.width; u++, p += view.du) {
      for (let c = 0; c < channels; c++) out[o++] = image.data[p * channels + c]!;
    }
  }
  return { data: out, width: view.width, height: view.height, channels };
}
