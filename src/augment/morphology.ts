import { z } from 'zod';
import { createImage, type RgbImage, type Rng } from '../core/index.ts';
import { blurField } from './filters.ts';
import { applyGeometric, flipHorizontalOp, flipVerticalOp, rotationOp } from './fused.ts';
import { defineTransform } from './transform.ts';

export function flipHorizontal(img: RgbImage): RgbImage {
  return applyGeometric(img, [flipHorizontalOp]);
}

export function flipVertical(img: RgbImage): RgbImage {
  return applyGeometric(img, [flipVerticalOp]);
}

/** Rotates by k x 90 degrees counter-clockwise. */
export function rotate90(img: RgbImage, k: number): RgbImage {
  return applyGeometric(img, [rotationOp(k)]);
}

/** Bilinear sample at (fx, fy) with white outside the image. */
function sampleBilinear(img: RgbImage, fx: number, fy: number, out: Uint8Array, o: number): void {
  const { width: w, height: h, data } = img;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const tx = fx - x0;
  const ty = fy - y0;
  for (let c = 0; c < 3; c++) {
    const px = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 255 : data[(y * w + x) * 3 + c]);
    const top = px(x0, y0) * (1 - tx) + px(x0 + 1, y0) * tx;
    const bottom = px(x0, y0 + 1) * (1 - tx) + px(x0 + 1, y0 + 1) * tx;
    out[o + c] = Math.round(top * (1 - ty) + bottom * ty);
  }
}

/** Zoom about the centre by factor, same output size; white fills where zooming out uncovers. */
export function zoom(img: RgbImage, factor: number): RgbImage {
  const { width: w, height: h } = img;
  const out = createImage(w, h, 0);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) sampleBilinear(img, cx + (x - cx) / factor, cy + (y - cy) / factor, out.data, (y * w + x) * 3);
  }
  return out;
}

defineTransform({
  name: 'hflip',
  kind: 'morphology',
  description: 'Mirror left-right (use p: 0.5 for a random flip)',
  schema: z.object({}),
  fuse: () => () => flipHorizontalOp,
});

defineTransform({
  name: 'vflip',
  kind: 'morphology',
  description: 'Mirror top-bottom (use p: 0.5 for a random flip)',
  schema: z.object({}),
  fuse: () => () => flipVerticalOp,
});

defineTransform({
  name: 'rot90',
  kind: 'morphology',
  description: 'Rotation by a random multiple of 90 degrees (0, 90, 180, 270)',
  schema: z.object({}),
  fuse: () => (rng: Rng) => rotationOp(rng.int(4)),
});

defineTransform({
  name: 'scale',
  kind: 'morphology',
  description: 'Zoom about the centre by U(1-range, 1+range), same size, bilinear, white where uncovered',
  schema: z.object({ range: z.number().min(0).max(0.9).default(0.1) }),
  make: (p) => (img: RgbImage, rng: Rng) => zoom(img, rng.uniform(1 - p.range, 1 + p.range)),
});

/**
 * Elastic deformation (Simard et al. 2003): a random displacement field, Gaussian-smoothed with sigma
 * pixels and normalised so its largest displacement is alpha pixels.
 */
export function elastic(img: RgbImage, alpha: number, sigma: number, rng: Rng): RgbImage {
  const { width: w, height: h } = img;
  const fields: Float32Array[] = [];
  for (let f = 0; f < 2; f++) {
    const noise = new Float32Array(w * h);
    for (let i = 0; i < noise.length; i++) noise[i] = rng.uniform(-1, 1);
    fields.push(noise);
  }
  const smooth = fields.map((f) => blurField(f, w, h, sigma));
  // Normalise each smoothed field to unit peak before scaling, so alpha is in pixels.
  const scale = smooth.map((f) => {
    let m = 1e-9;
    for (const v of f) m = Math.max(m, Math.abs(v));
    return alpha / m;
  });
  const out = createImage(w, h, 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      sampleBilinear(img, x + smooth[0][i] * scale[0], y + smooth[1][i] * scale[1], out.data, i * 3);
    }
  }
  return out;
}

defineTransform({
  name: 'elastic',
  kind: 'morphology',
  description: 'Elastic deformation: smooth random displacements of up to alpha pixels, smoothness sigma pixels',
  schema: z.object({ alpha: z.number().min(0).max(100).default(4), sigma: z.number().min(0.5).max(100).default(8) }),
  make: (p) => (img: RgbImage, rng: Rng) => elastic(img, p.alpha, p.sigma, rng),
});

export function crop(img: RgbImage, x: number, y: number, w: number, h: number): RgbImage {
  const out = createImage(w, h, 0);
  for (let r = 0; r < h; r++) out.data.set(img.data.subarray(((y + r) * img.width + x) * 3, ((y + r) * img.width + x + w) * 3), r * w * 3);
  return out;
}

defineTransform({
  name: 'random-crop',
  kind: 'morphology',
  description: 'A size x size crop at a random position (the whole tile when it is not larger)',
  schema: z.object({ size: z.number().int().min(1).default(224) }),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const w = Math.min(p.size, img.width);
    const h = Math.min(p.size, img.height);
    return crop(img, rng.int(img.width - w + 1), rng.int(img.height - h + 1), w, h);
  },
});
