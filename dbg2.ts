import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { decodePhoto, resizeForModel, compose, encode } from './electron/engine/pipeline.ts';
import { probeImage } from './electron/engine/image-input.ts';
import { getModelSpec } from './electron/models/manifest.ts';
import { parseOutputOptions } from './electron/engine/options.ts';
const spec = getModelSpec('u2netp');
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!.toFixed(1);
for (const f of ['/work/shared/photos/edge-cases/derived_12mp_orient6_4032x2688.jpg', '/work/shared/photos/people/fr_obama_1920x1080.jpg']) {
  const b = readFileSync(f);
  const T: Record<string, number[]> = { probe: [], decode: [], model: [], compose: [], encode: [] };
  const mask = { data: new Uint8Array(320 * 320), width: 320, height: 320, channels: 1 };
  for (let i = 0; i < 320 * 320; i++) mask.data[i] = ((i % 320) - 160) ** 2 + (Math.floor(i / 320) - 160) ** 2 < 80 ** 2 ? 255 : 0;
  for (let i = 0; i < 8; i++) {
    let s = performance.now(); await probeImage(b, 64e6); T.probe!.push(performance.now() - s);
    s = performance.now(); const d = await decodePhoto(b, 1920, 64e6); T.decode!.push(performance.now() - s);
    s = performance.now(); await resizeForModel(d, spec.input); T.model!.push(performance.now() - s);
    s = performance.now(); const c = compose(d, mask, parseOutputOptions({})); T.compose!.push(performance.now() - s);
    s = performance.now(); await encode(c, parseOutputOptions({})); T.encode!.push(performance.now() - s);
  }
  console.log(f.split('/').pop(), Object.fromEntries(Object.entries(T).map(([k, v]) => [k, med(v)])));
}
