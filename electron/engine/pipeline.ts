import sharp from 'sharp';
import type { ModelSpec } from '../models/manifest.ts';
import { composeCutout } from './cutout-compose.ts';
import type { RawImage } from './raw-image.ts';
import { toImageError, type InputFormat, type ProbedImage } from './image-input.ts';
import { orientRaw } from './orientation.ts';
import { PhotoRelayError } from '../../shared/errors.ts';
import { parseHexColour, type OutputOptions } from './options.ts';

export interface DecodedPhoto {
  format: InputFormat;
  /** Upright size of the original, after EXIF orientation. */
  originalWidth: number;
  originalHeight: number;
  /** RGB at the output size, as stored: `orientation` is applied later, by index arithmetic. */
  rgb: RawImage;
  orientation: number;
}

/**
 * Decode + resize to the output size, in one libvips chain. With a maxEdge, JPEG shrink-on-load
 * decodes straight to about the output size, so a 12 MP photo never exists at full resolution.
 * Orientation is not applied here (a rotate is a full extra pass over the pixels): the compose
 * loop applies it by index arithmetic. Alpha in the input is dropped, as rembg does: the model
 * decides what is foreground.
 */
export async function decodePhoto(
  bytes: Uint8Array,
  probed: ProbedImage,
  maxEdge: number | undefined,
  maxPixels: number,
  { upright = false }: { upright?: boolean } = {},
): Promise<DecodedPhoto> {
  const swapsAxes = probed.orientation >= 5;
  try {
    let chain = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' });
    // Upright in libvips (threaded) for the quality steps, which work on upright pixels.
    if (upright) chain = chain.autoOrient();
    if (maxEdge !== undefined) {
      // The box is square, so it fits the same whichever way up the photo is stored.
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
      originalWidth: swapsAxes ? probed.height : probed.width,
      originalHeight: swapsAxes ? probed.width : probed.height,
      rgb: { data, width: info.width, height: info.height, channels: info.channels },
      orientation: upright ? 1 : probed.orientation,
    };
  } catch (error) {
    throw toImageError(error, { bytes, format: probed.format });
  }
}

/**
 * The model's input pixels, upright: the photo resized to the input size with aspect ignored
 * (rembg), decoded straight from the bytes so it can run beside the output decode on the other
 * core and inference need not wait for the larger decode. Shrink-on-load is used only for large
 * reductions, where a 12 MP JPEG decodes at 1/8 scale; small photos get the exact full-resolution
 * Lanczos resize that rembg parity is measured on.
 */
export async function decodeModelInput(
  bytes: Uint8Array,
  probed: ProbedImage,
  input: ModelSpec['input'],
  maxPixels: number,
): Promise<Uint8Array> {
  const swapsAxes = probed.orientation >= 5;
  const width = swapsAxes ? input.height : input.width;
  const height = swapsAxes ? input.width : input.height;
  const reduction = Math.min(probed.width / width, probed.height / height);
  try {
    const data = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .resize(width, height, {
        fit: 'fill',
        kernel: 'lanczos3',
        fastShrinkOnLoad: reduction >= 4,
      })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
    return orientRaw({ data, width, height, channels: 3 }, probed.orientation).data;
  } catch (error) {
    throw toImageError(error, { bytes, format: probed.format });
  }
}

/**
 * The model's input pixels, upright, from a photo already decoded at the output size: for files
 * whose every decode costs memory in proportion to the whole image (progressive JPEG), so they
 * are decoded once instead of twice.
 */
export async function modelInputFromPhoto(
  photo: DecodedPhoto,
  input: ModelSpec['input'],
): Promise<Uint8Array> {
  const swapsAxes = photo.orientation >= 5;
  const width = swapsAxes ? input.height : input.width;
  const height = swapsAxes ? input.width : input.height;
  const { rgb } = photo;
  const data = await sharp(rgb.data, {
    raw: { width: rgb.width, height: rgb.height, channels: rgb.channels as 3 },
  })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw({ depth: 'uchar' })
    .toBuffer();
  return orientRaw({ data, width, height, channels: 3 }, photo.orientation).data;
}

export async function compose(
  photo: DecodedPhoto,
  mask: RawImage,
  options: OutputOptions,
): Promise<RawImage> {
  let background: [number, number, number] | Uint8Array | undefined = options.background
    ? parseHexColour(options.background)
    : undefined;
  if (options.backgroundImage) {
    const swaps = photo.orientation >= 5;
    const width = swaps ? photo.rgb.height : photo.rgb.width;
    const height = swaps ? photo.rgb.width : photo.rgb.height;
    background = await backgroundPixels(options.backgroundImage, width, height);
  }
  return composeCutout({ rgb: photo.rgb, orientation: photo.orientation, mask, background });
}

/** The operator's background image as RGB at the output size, scaled to cover it. */
async function backgroundPixels(
  bytes: Uint8Array,
  width: number,
  height: number,
): Promise<Uint8Array> {
  try {
    return await sharp(bytes, { limitInputPixels: 64_000_000 })
      .autoOrient()
      .resize(width, height, { fit: 'cover' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
  } catch (error) {
    throw new PhotoRelayError(
      'E_BAD_OPTION',
      `backgroundImage cannot be read: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
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
