import sharp from 'sharp';
import type { ModelSpec } from '../models/manifest.ts';
import { composeCutout, type RawImage } from './compose.ts';
import { probeImage, toImageError, type InputFormat } from './image-input.ts';
import { parseHexColour, type OutputOptions } from './options.ts';

export interface DecodedPhoto {
  format: InputFormat;
  /** Upright size of the original, after EXIF orientation. */
  originalWidth: number;
  originalHeight: number;
  /** Upright RGB at the output size (the original size when no maxEdge is given). */
  rgb: RawImage;
}

/**
 * Decode + orient + resize, in one libvips chain. With a maxEdge, JPEG shrink-on-load decodes
 * straight to about the output size, so a 12 MP photo never exists at full resolution. Alpha in
 * the input is dropped, as rembg does: the model decides what is foreground.
 */
export async function decodePhoto(
  bytes: Uint8Array,
  maxEdge: number | undefined,
  maxPixels: number,
): Promise<DecodedPhoto> {
  const probed = await probeImage(bytes, maxPixels);
  const swapsAxes = probed.orientation >= 5;
  const originalWidth = swapsAxes ? probed.height : probed.width;
  const originalHeight = swapsAxes ? probed.width : probed.height;
  try {
    let chain = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' }).autoOrient();
    if (maxEdge !== undefined) {
      chain = chain.resize({
        width: maxEdge,
        height: maxEdge,
        fit: 'inside',
        withoutEnlargement: true,
      });
    }
    const { data, info } = await chain
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return {
      format: probed.format,
      originalWidth,
      originalHeight,
      rgb: { data, width: info.width, height: info.height, channels: info.channels },
    };
  } catch (error) {
    throw toImageError(error);
  }
}

/** The model's input pixels: the upright RGB resized to the input size, aspect ignored (rembg). */
export async function resizeForModel(
  rgb: RawImage,
  input: ModelSpec['input'],
): Promise<Uint8Array> {
  return sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(input.width, input.height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
}

export function compose(rgb: RawImage, mask: RawImage, options: OutputOptions): RawImage {
  const background = options.background ? parseHexColour(options.background) : undefined;
  return composeCutout({ rgb, mask, background });
}

/** Encodes the composed pixels. Raw input carries no EXIF/GPS, so none reaches the output. */
export async function encode(image: RawImage, options: OutputOptions): Promise<Buffer> {
  const chain = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels as 3 | 4 },
  });
  if (options.format === 'webp') {
    return chain.webp({ quality: 90, alphaQuality: 100, effort: 2 }).toBuffer();
  }
  return chain
    .png({ compressionLevel: options.pngCompressionLevel, adaptiveFiltering: false })
    .toBuffer();
}
