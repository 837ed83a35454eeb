import sharp from 'sharp';
import fs from 'node:fs';
const b = fs.readFileSync('/work/shared/photos/edge-cases/derived_12mp_orient6_4032x2688.jpg');
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1].toFixed(1);
async function time(name, fn) { await fn(); const r = []; for (let i = 0; i < 9; i++) { const s = performance.now(); await fn(); r.push(performance.now() - s); } console.log(name.padEnd(40), med(r)); }
const box = { width: 1920, height: 1920, fit: 'inside', withoutEnlargement: true };
await time('full chain (current)', () => sharp(b, { limitInputPixels: 64e6, failOn: 'error' }).resize(box).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer());
await time('no colourspace/depth', () => sharp(b).resize(box).removeAlpha().raw().toBuffer());
await time('plain resize', () => sharp(b).resize(box).raw().toBuffer());
await time('resize linear', () => sharp(b).resize({ ...box, kernel: 'linear' }).raw().toBuffer());
await time('resize mitchell', () => sharp(b).resize({ ...box, kernel: 'mitchell' }).raw().toBuffer());
await time('shrink-on-load only (1/2) no resize', () => sharp(b).resize({ width: 1344, height: 2016, fit: 'inside' }).raw().toBuffer());
await time('decode 1/8', () => sharp(b).resize({ width: 504, height: 504, fit: 'inside' }).raw().toBuffer());
await time('sequentialRead', () => sharp(b, { sequentialRead: true }).resize(box).raw().toBuffer());
console.log('concurrency', sharp.concurrency());
