import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { decodePhoto, resizeForModel, compose, encode } from './electron/engine/pipeline.ts';
import { getModelSpec } from './electron/models/manifest.ts';
import { parseOutputOptions } from './electron/engine/options.ts';
const spin = process.argv[2] ?? '0';
const spec = getModelSpec('u2netp');
const sess = await ort.InferenceSession.create('/root/.local/share/photo-relay/models/u2netp.onnx', { intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: spin } } } });
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!.toFixed(1);
const b = readFileSync('/work/shared/photos/edge-cases/derived_12mp_orient6_4032x2688.jpg');
const T: Record<string, number[]> = { decode: [], model: [], infer: [], compose: [], encode: [] };
const mask = { data: new Uint8Array(320 * 320), width: 320, height: 320, channels: 1 };
for (let i = 0; i < 320 * 320; i++) mask.data[i] = ((i % 320) - 160) ** 2 + (Math.floor(i / 320) - 160) ** 2 < 80 ** 2 ? 255 : 0;
const f = new Float32Array(3 * 320 * 320);
for (let i = 0; i < 8; i++) {
  let s = performance.now(); const d = await decodePhoto(b, 1920, 64e6); T.decode!.push(performance.now() - s);
  s = performance.now(); await resizeForModel(d, spec.input); T.model!.push(performance.now() - s);
  s = performance.now(); await sess.run({ 'input.1': new ort.Tensor('float32', f, [1, 3, 320, 320]) }); T.infer!.push(performance.now() - s);
  s = performance.now(); const c = compose(d, mask, parseOutputOptions({})); T.compose!.push(performance.now() - s);
  s = performance.now(); await encode(c, parseOutputOptions({})); T.encode!.push(performance.now() - s);
}
console.log('spin', spin, Object.fromEntries(Object.entries(T).map(([k, v]) => [k, med(v)])));
