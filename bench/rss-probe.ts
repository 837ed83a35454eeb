/**
 * Runs in its own process so its peak RSS is the engine's alone: loads u2netp, makes the display
 * cut-out of the 12 MP photo several times (a relay's steady state, not just the first run), then
 * the full-resolution one, and prints peak RSS as JSON.
 */
import { createEngine } from '../electron/engine/index.ts';
import { stagePhotos } from './photos.ts';

const threads = Number(process.argv[2] ?? 2);
const [phone] = await stagePhotos();
const engine = await createEngine({ model: 'u2netp', threads });
const afterLoadMb = process.memoryUsage().rss / 1e6;
const display = await engine.segment(phone!.bytes, { maxEdge: 1920 });
const firstDisplayPeakMb = process.resourceUsage().maxRSS / 1e3;
for (let i = 0; i < 5; i++) await engine.segment(phone!.bytes, { maxEdge: 1920 });
const displayPeakMb = process.resourceUsage().maxRSS / 1e3;
const fullStarted = performance.now();
const full = await engine.render(phone!.bytes, display.mask);
const fullMs = performance.now() - fullStarted;
const fullPeakMb = process.resourceUsage().maxRSS / 1e3;
await engine.dispose();
console.log(
  JSON.stringify({
    afterLoadMb,
    firstDisplayPeakMb,
    displayPeakMb,
    fullPeakMb,
    fullMs,
    fullSize: `${full.width}×${full.height}`,
    fullPngBytes: full.image.length,
    displayPngBytes: display.image.length,
    displayBase64Bytes: display.image.toString('base64').length,
  }),
);
