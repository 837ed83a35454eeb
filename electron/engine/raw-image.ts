/** Interleaved 8-bit pixels as sharp's `.raw()` gives them (the engine's one image shape). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}
