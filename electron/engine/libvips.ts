import sharp from 'sharp';

/**
 * libvips settings for the engine, applied on the main thread and again in every worker: sharp
 * resets its cache to the defaults each time its module loads in a thread, and the cache is one
 * for the whole process.
 *
 * The operation cache is off. It keeps the last 100 operations alive within 50 MB, but it counts
 * only memory libvips allocates itself: a cached load keeps its decoder, and a decoder's own
 * buffers (libjpeg's whole-image coefficient arrays for a progressive JPEG, ~3 bytes per pixel)
 * are invisible to that limit. Measured (bench/mutated.bench.ts): a 100 KB progressive JPEG
 * whose header says 8000×7999 added ~190 MB of RSS per decode that stayed while cached (eight
 * decodes: 409 → 1,954 MB; with the cache off: 398 → 596 MB and flat). The engine never repeats
 * an operation (each photo's two loads differ in shrink and size), so the cache saved nothing.
 */
export function configureLibvips(): void {
  sharp.cache(false);
}
