import sharp from 'sharp';
import { InvalidSlideError, type RgbImage } from '../core/index.ts';
import { decodeToRgb } from './decode.ts';
import type { SlideReader } from './slide.ts';
import { MAX_SLIDE_SIDE } from './tiffSlide.ts';

/** Above this, a flat image is re-decoded per region instead of being held decoded in memory. */
const KEEP_DECODED_PIXELS = 32 * 1024 * 1024;

/** A PNG or JPEG patch (BACH, BreakHis) as a one-level slide. */
export async function openImageSlide(path: string): Promise<SlideReader> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new InvalidSlideError(path, `cannot read image header: ${(err as Error).message}`, { cause: err });
  }
  const { width, height } = meta;
  if (!width || !height || width <= 0 || height <= 0) {
    throw new InvalidSlideError(path, `image declares ${width}x${height} pixels`);
  }
  if (width > MAX_SLIDE_SIDE || height > MAX_SLIDE_SIDE) {
    throw new InvalidSlideError(path, `image declares ${width}x${height} pixels, beyond the ${MAX_SLIDE_SIDE} pixel limit per side`);
  }
  let mpp: number | undefined;
  // PNG pHYs / JPEG JFIF density in pixels per inch; only a microscope-like value counts.
  if (meta.density && meta.density > 0) {
    const m = 25_400 / meta.density;
    if (m >= 0.05 && m <= 20) mpp = m;
  }
  let decoded: Promise<RgbImage> | undefined;
  const decodeAll = async (): Promise<RgbImage> => {
    try {
      return await decodeToRgb(sharp(path, { limitInputPixels: false }));
    } catch (err) {
      throw new InvalidSlideError(path, `cannot decode image: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    levels: [{ width, height, downsample: 1 }],
    mpp,
    vendor: 'image',
    associatedImages: [],
    async readLevelRect(_level, x, y, w, h) {
      if (width * height <= KEEP_DECODED_PIXELS) {
        decoded ??= decodeAll();
        decoded.catch(() => (decoded = undefined));
        const full = await decoded;
        const out = new Uint8Array(w * h * 3);
        for (let r = 0; r < h; r++) {
          const s = ((y + r) * width + x) * 3;
          out.set(full.data.subarray(s, s + w * 3), r * w * 3);
        }
        return { width: w, height: h, data: out };
      }
      try {
        return await decodeToRgb(sharp(path, { limitInputPixels: false }).extract({ left: x, top: y, width: w, height: h }));
      } catch (err) {
        throw new InvalidSlideError(path, `cannot decode image region: ${(err as Error).message}`, { cause: err });
      }
    },
    async readAssociatedImage() {
      throw new Error('unreachable: image slides have no associated images');
    },
    async close() {
      decoded = undefined;
    },
  };
}
