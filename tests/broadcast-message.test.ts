import { expect, test } from 'vitest';
import { originalMessage } from '../electron/relay/broadcaster.ts';
import { syntheticPhoto } from './helpers.ts';

test('the original message assembled from buffers is byte-identical to JSON.stringify', async () => {
  const png = await syntheticPhoto(120, 80, 'png');
  const event = {
    id: 'x',
    timestamp: '2026-11-26T10:00:00.123Z',
    description: 'quotes " backslash \\ newline \n unicode 日本 🎉 </script>',
    originalFilename: 'a"b\\c.jpg',
    processingTime: 123.45,
    width: 120,
    height: 80,
    cutoutUrl: '/api/photos/x/cutout',
    compactUrl: '/api/photos/x/cutout.webp',
  };
  const expected = JSON.stringify({
    imageData: png.toString('base64'),
    timestamp: event.timestamp,
    metadata: {
      description: event.description,
      processingTime: event.processingTime,
      originalFilename: event.originalFilename,
    },
  });
  expect(originalMessage(event, png).toString('utf8')).toBe(expected);
});
