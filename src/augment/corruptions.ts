import sharp from 'sharp';
import { z } from 'zod';
import { createImage, type RgbImage, type Rng } from '../core/index.ts';
import { contrastLut, scaleStains } from './colour.ts';
import { clampByte, hsvToRgb, rgbToHsv } from './colourSpaces.ts';
import { defineTransform } from './transform.ts';
import { blurRgb, jpegRoundTripSimulated } from './wasmKernels.ts';

/**
 * Corruptions at severities 1-5, following ImageNet-C (Hendrycks & Dietterich 2019) where it defines
 * one: the tables below are its constants unless noted. Each is also usable with explicit params.
 */

function raw(img: RgbImage) {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

async function fromSharp(p: sharp.Sharp): Promise<RgbImage> {
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function addGaussianNoise(img: RgbImage, sigma255: number, rng: Rng): RgbImage {
  const out = createImage(img.width, img.height, 0);
  for (let i = 0; i < img.data.length; i++) out.data[i] = clampByte(img.data[i] + rng.normal() * sigma255);
  return out;
}

/** Poisson sampling: Knuth's method for small means, normal approximation above 30. */
export function poisson(lambda: number, rng: Rng): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * rng.normal()));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rng.next();
  } while (p > l);
  return k - 1;
}

export function addShotNoise(img: RgbImage, photonsAtWhite: number, rng: Rng): RgbImage {
  const out = createImage(img.width, img.height, 0);
  for (let i = 0; i < img.data.length; i++) {
    out.data[i] = clampByte((poisson((img.data[i] / 255) * photonsAtWhite, rng) / photonsAtWhite) * 255);
  }
  return out;
}

/**
 * Above this many pixels (4 MP) the WebAssembly kernels hand over to libvips, which streams: their
 * linear memory, which never shrinks, stays under about 100 MB per thread.
 */
const WASM_MAX_PIXELS = 2048 * 2048;

/**
 * Gaussian blur with the kernel truncated at 3 sigma, edges replicated. WebAssembly SIMD for tiles:
 * libvips needs about 1 ms per 256 px tile, mostly pipeline set-up (and its default kernel stops at
 * amplitude 0.2, 5 taps for sigma 1). Large images go through libvips with the same truncation.
 */
export async function gaussianBlur(img: RgbImage, sigma: number): Promise<RgbImage> {
  if (sigma < 0.3) return { width: img.width, height: img.height, data: img.data.slice() };
  if (img.width * img.height <= WASM_MAX_PIXELS) return blurRgb(img, sigma);
  return fromSharp(raw(img).blur({ sigma, minAmplitude: Math.exp(-4.5), precision: 'float' }));
}

/**
 * The jpeg transform's round trip: the WebAssembly simulation of libjpeg's lossy stages by default
 * (see wasmKernels.ts), a real encode and decode through sharp for codec libjpeg or large images.
 */
export async function jpegCorruption(img: RgbImage, quality: number, codec: 'simulated' | 'libjpeg'): Promise<RgbImage> {
  if (codec === 'simulated' && img.width * img.height <= WASM_MAX_PIXELS) return jpegRoundTripSimulated(img, quality);
  return jpegRoundTrip(img, quality);
}

/** Convolution with a normalised kernel through libvips (edges extended). */
export async function convolve(img: RgbImage, kernel: Float64Array, size: number): Promise<RgbImage> {
  let sum = 0;
  for (const k of kernel) sum += k;
  return fromSharp(raw(img).convolve({ width: size, height: size, kernel: Array.from(kernel), scale: sum }));
}

export function diskKernel(radius: number): { kernel: Float64Array; size: number } {
  const r = Math.max(1, Math.ceil(radius));
  const size = 2 * r + 1;
  const kernel = new Float64Array(size * size);
  for (let y = -r; y <= r; y++) {
    for (let x = -r; x <= r; x++) {
      // Anti-aliased disk: coverage of the pixel by the circle, approximated from the centre distance.
      const d = Math.hypot(x, y);
      kernel[(y + r) * size + x + r] = Math.max(0, Math.min(1, radius + 0.5 - d));
    }
  }
  return { kernel, size };
}

export async function defocusBlur(img: RgbImage, radius: number, aliasSigma: number): Promise<RgbImage> {
  const { kernel, size } = diskKernel(radius);
  const blurred = await convolve(img, kernel, size);
  return gaussianBlur(blurred, aliasSigma);
}

/**
 * ImageMagick's MotionBlurImage, as ImageNet-C calls it through Wand: 2 ceil(radius) + 1 taps along the
 * angle, all on one side of the pixel (a streak, not a symmetric blur), tap i at the pixel offset
 * (round(i cos a), round(i sin a)) with weight exp(-i^2 / (2 sigma^2)), normalised; image edges
 * replicated (ImageMagick's default virtual pixels).
 */
export function motionBlur(img: RgbImage, radius: number, sigma: number, angleDeg: number): RgbImage {
  const taps = 2 * Math.ceil(radius) + 1;
  const a = (angleDeg * Math.PI) / 180;
  const weights = Float64Array.from({ length: taps }, (_, i) => Math.exp(-(i * i) / (2 * sigma * sigma)));
  const total = weights.reduce((x, y) => x + y, 0);
  for (let i = 0; i < taps; i++) weights[i] /= total;
  // ImageMagick rounds with ceil(v - 0.5).
  const dx = Int32Array.from({ length: taps }, (_, i) => Math.ceil(i * Math.cos(a) - 0.5));
  const dy = Int32Array.from({ length: taps }, (_, i) => Math.ceil(i * Math.sin(a) - 0.5));
  const { width: w, height: h, data } = img;
  const out = createImage(w, h, 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < taps; i++) {
        const sx = Math.min(w - 1, Math.max(0, x + dx[i]));
        const sy = Math.min(h - 1, Math.max(0, y + dy[i]));
        const o = (sy * w + sx) * 3;
        r += weights[i] * data[o];
        g += weights[i] * data[o + 1];
        b += weights[i] * data[o + 2];
      }
      const o = (y * w + x) * 3;
      out.data[o] = clampByte(r);
      out.data[o + 1] = clampByte(g);
      out.data[o + 2] = clampByte(b);
    }
  }
  return out;
}

export async function jpegRoundTrip(img: RgbImage, quality: number): Promise<RgbImage> {
  // No Huffman optimisation, as Pillow (ImageNet-C's encoder) does by default; it is also 0.3 ms faster.
  const encoded = await raw(img)
    .jpeg({ quality: Math.round(quality), optimiseCoding: false })
    .toBuffer();
  return fromSharp(sharp(encoded));
}

export async function pixelate(img: RgbImage, factor: number): Promise<RgbImage> {
  const w = Math.max(1, Math.round(img.width * factor));
  const h = Math.max(1, Math.round(img.height * factor));
  const small = await raw(img).resize(w, h, { kernel: 'linear', fit: 'fill' }).raw().toBuffer();
  return fromSharp(
    sharp(small, { raw: { width: w, height: h, channels: 3 } }).resize(img.width, img.height, { kernel: 'nearest', fit: 'fill' }),
  );
}

function mapPixels(img: RgbImage, fn: (r: number, g: number, b: number, out: Uint8Array, o: number) => void): RgbImage {
  const out = createImage(img.width, img.height, 0);
  for (let i = 0; i < img.data.length; i += 3) fn(img.data[i], img.data[i + 1], img.data[i + 2], out.data, i);
  return out;
}

const severity = <T>(values: T[]) => values;

defineTransform({
  name: 'gaussian-noise',
  kind: 'corruption',
  description: 'Additive Gaussian noise, sigma as a fraction of 255 (ImageNet-C: .08 .12 .18 .26 .38)',
  schema: z.object({ sigma: z.number().min(0).max(1).default(0.08) }),
  severities: severity([0.08, 0.12, 0.18, 0.26, 0.38].map((sigma) => ({ sigma }))),
  make:
    ({ sigma }) =>
    (img: RgbImage, rng: Rng) =>
      addGaussianNoise(img, sigma * 255, rng),
});

defineTransform({
  name: 'shot-noise',
  kind: 'corruption',
  description: 'Poisson photon noise, photons at full white (ImageNet-C: 60 25 12 5 3)',
  schema: z.object({ photons: z.number().positive().default(60) }),
  severities: severity([60, 25, 12, 5, 3].map((photons) => ({ photons }))),
  make:
    ({ photons }) =>
    (img: RgbImage, rng: Rng) =>
      addShotNoise(img, photons, rng),
});

defineTransform({
  name: 'gaussian-blur',
  kind: 'corruption',
  description: 'Gaussian blur, sigma in pixels (ImageNet-C: 1 2 3 4 6)',
  schema: z.object({ sigma: z.number().min(0).max(50).default(1) }),
  severities: severity([1, 2, 3, 4, 6].map((sigma) => ({ sigma }))),
  make:
    ({ sigma }) =>
    (img: RgbImage) =>
      gaussianBlur(img, sigma),
});

defineTransform({
  name: 'defocus-blur',
  kind: 'corruption',
  description: 'Disk (out-of-focus) blur of radius pixels, then a Gaussian of aliasSigma (ImageNet-C: (3,.1) (4,.5) (6,.5) (8,.5) (10,.5))',
  schema: z.object({ radius: z.number().min(0.5).max(50).default(3), aliasSigma: z.number().min(0).max(10).default(0.1) }),
  severities: severity(
    [
      [3, 0.1],
      [4, 0.5],
      [6, 0.5],
      [8, 0.5],
      [10, 0.5],
    ].map(([radius, aliasSigma]) => ({ radius, aliasSigma })),
  ),
  make: (p) => (img: RgbImage) => defocusBlur(img, p.radius, p.aliasSigma),
});

defineTransform({
  name: 'motion-blur',
  kind: 'corruption',
  description:
    "ImageMagick's motion blur: a one-sided streak of 2 radius + 1 taps with Gaussian weights sigma at a random angle in [-45, 45] degrees (ImageNet-C: (10,3) (15,5) (15,8) (15,12) (20,15))",
  schema: z.object({ radius: z.number().min(1).max(50).default(10), sigma: z.number().min(0.5).max(50).default(3) }),
  severities: severity(
    [
      [10, 3],
      [15, 5],
      [15, 8],
      [15, 12],
      [20, 15],
    ].map(([radius, sigma]) => ({ radius, sigma })),
  ),
  make: (p) => (img: RgbImage, rng: Rng) => {
    return motionBlur(img, p.radius, p.sigma, rng.uniform(-45, 45));
  },
});

defineTransform({
  name: 'jpeg',
  kind: 'corruption',
  description:
    "JPEG compression at the given quality, 4:2:0 (ImageNet-C: 25 18 15 10 7); codec simulated: libjpeg's lossy stages in WebAssembly (4x faster, 50-58 dB from a real round trip), libjpeg: a real encode and decode through sharp",
  schema: z.object({ quality: z.number().int().min(1).max(100).default(25), codec: z.enum(['simulated', 'libjpeg']).default('simulated') }),
  severities: severity([25, 18, 15, 10, 7].map((quality) => ({ quality }))),
  make:
    ({ quality, codec }) =>
    (img: RgbImage) =>
      jpegCorruption(img, quality, codec),
});

defineTransform({
  name: 'pixelate',
  kind: 'corruption',
  description: 'Resolution loss: area-downsample by factor, nearest-upsample back (ImageNet-C: .6 .5 .4 .3 .25)',
  schema: z.object({ factor: z.number().min(0.02).max(1).default(0.6) }),
  severities: severity([0.6, 0.5, 0.4, 0.3, 0.25].map((factor) => ({ factor }))),
  make:
    ({ factor }) =>
    (img: RgbImage) =>
      pixelate(img, factor),
});

defineTransform({
  name: 'brightness-shift',
  kind: 'corruption',
  description: 'Adds delta to HSV value (ImageNet-C: .1 .2 .3 .4 .5)',
  schema: z.object({ delta: z.number().min(-1).max(1).default(0.1) }),
  severities: severity([0.1, 0.2, 0.3, 0.4, 0.5].map((delta) => ({ delta }))),
  make: ({ delta }) => {
    const hsv = new Float64Array(3);
    return (img: RgbImage) =>
      mapPixels(img, (r, g, b, out, o) => {
        rgbToHsv(r, g, b, hsv);
        hsvToRgb(hsv[0], hsv[1], Math.max(0, Math.min(1, hsv[2] + delta)), out, o);
      });
  },
});

defineTransform({
  name: 'contrast-loss',
  kind: 'corruption',
  description: "Values pulled toward each channel's mean: (x - mean_c) x factor + mean_c (ImageNet-C: .4 .3 .2 .1 .05)",
  schema: z.object({ factor: z.number().min(0).max(2).default(0.4) }),
  severities: severity([0.4, 0.3, 0.2, 0.1, 0.05].map((factor) => ({ factor }))),
  make:
    ({ factor }) =>
    (img: RgbImage) => {
      // ImageNet-C: means = np.mean(x, axis=(0, 1)), one per channel, so the colour balance is kept.
      const sums = [0, 0, 0];
      for (let i = 0; i < img.data.length; i += 3) {
        sums[0] += img.data[i];
        sums[1] += img.data[i + 1];
        sums[2] += img.data[i + 2];
      }
      const n = img.data.length / 3;
      const [lr, lg, lb] = sums.map((v) => contrastLut(factor, v / n));
      return mapPixels(img, (r, g, b, out, o) => {
        out[o] = lr[r];
        out[o + 1] = lg[g];
        out[o + 2] = lb[b];
      });
    },
});

defineTransform({
  name: 'desaturate',
  kind: 'corruption',
  description:
    "Saturation multiplied by factor (ImageNet-C's saturate goes both ways and is not monotone; here only fading: .75 .55 .4 .25 .1)",
  schema: z.object({ factor: z.number().min(0).max(1).default(0.75) }),
  severities: severity([0.75, 0.55, 0.4, 0.25, 0.1].map((factor) => ({ factor }))),
  make: ({ factor }) => {
    const hsv = new Float64Array(3);
    return (img: RgbImage) =>
      mapPixels(img, (r, g, b, out, o) => {
        rgbToHsv(r, g, b, hsv);
        hsvToRgb(hsv[0], hsv[1] * factor, hsv[2], out, o);
      });
  },
});

for (const [name, index, stain] of [
  ['stain-h', 0, 'haematoxylin'],
  ['stain-e', 1, 'eosin'],
] as const) {
  defineTransform({
    name,
    kind: 'corruption',
    description: `${stain} concentration scaled by 1 +/- amount (direction: increase or decrease; gradelab table: .1 .2 .35 .5 .7); glass untouched`,
    schema: z.object({ amount: z.number().min(0).max(0.95).default(0.1), direction: z.enum(['increase', 'decrease']).default('increase') }),
    severities: severity([0.1, 0.2, 0.35, 0.5, 0.7].map((amount) => ({ amount }))),
    make: (p) => (img: RgbImage) => {
      const alpha = [1, 1, 1];
      alpha[index] = p.direction === 'increase' ? 1 + p.amount : 1 - p.amount;
      return scaleStains(img, alpha, [0, 0, 0]);
    },
  });
}
