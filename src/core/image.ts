import { InputError } from './errors.ts';

/** Interleaved 8-bit RGB, row-major (HWC). The one pixel type passed between modules. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export const WHITE = 255;

export function createImage(width: number, height: number, fill = WHITE): RgbImage {
  assertDimensions(width, height);
  const data = new Uint8Array(width * height * 3);
  if (fill !== 0) data.fill(fill);
  return { width, height, data };
}

export function assertDimensions(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InputError(`image size must be positive integers, got ${width}x${height}`);
  }
}

/** Copies `src` into `dst` at (dx, dy), clipping to dst. Used to assemble regions from tiles. */
export function blit(
  dst: RgbImage,
  src: { width: number; height: number; data: Uint8Array; channels?: number },
  dx: number,
  dy: number,
): void {
  const channels = src.channels ?? 3;
  const x0 = Math.max(0, dx);
  const y0 = Math.max(0, dy);
  const x1 = Math.min(dst.width, dx + src.width);
  const y1 = Math.min(dst.height, dy + src.height);
  if (x1 <= x0 || y1 <= y0) return;
  const rowLen = x1 - x0;
  for (let y = y0; y < y1; y++) {
    const sy = y - dy;
    const dOff = (y * dst.width + x0) * 3;
    const sOff = (sy * src.width + (x0 - dx)) * channels;
    if (channels === 3) {
      dst.data.set(src.data.subarray(sOff, sOff + rowLen * 3), dOff);
    } else {
      for (let i = 0; i < rowLen; i++) {
        const s = sOff + i * channels;
        const d = dOff + i * 3;
        if (channels >= 3) {
          dst.data[d] = src.data[s];
          dst.data[d + 1] = src.data[s + 1];
          dst.data[d + 2] = src.data[s + 2];
        } else {
          const g = src.data[s];
          dst.data[d] = g;
          dst.data[d + 1] = g;
          dst.data[d + 2] = g;
        }
      }
    }
  }
}

/** Float32 in [0,1], HWC, for model input. Conversion is explicit so it never happens silently. */
export function toFloat32(img: RgbImage, out?: Float32Array, offset = 0): Float32Array {
  const n = img.data.length;
  const dst = out ?? new Float32Array(n);
  const scale = 1 / 255;
  for (let i = 0; i < n; i++) dst[offset + i] = img.data[i] * scale;
  return dst;
}

const UNIT_SCALE = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/** Same-size RGB images as one model batch: Float32 NHWC in [0, 1]. */
export function imagesToBatch(images: readonly RgbImage[]): { n: number; width: number; height: number; channels: 3; data: Float32Array } {
  const { width, height } = images[0];
  const per = width * height * 3;
  const data = new Float32Array(images.length * per);
  images.forEach((img, j) => {
    if (img.width !== width || img.height !== height)
      throw new InputError(`batch images differ in size: ${img.width}x${img.height} vs ${width}x${height}`);
    const src = img.data;
    const off = j * per;
    for (let q = 0; q < per; q++) data[off + q] = UNIT_SCALE[src[q]];
  });
  return { n: images.length, width, height, channels: 3, data };
}
