import { z } from 'zod';
import { createImage, type RgbImage, type Rng } from '../core/index.ts';
import { clampByte, HED_STAINS, hsvToRgb, invert3, rgbToHsv, tissueWeight } from './colourSpaces.ts';
import { applyPixelOps, type PixelOp } from './fused.ts';
import { defineTransform } from './transform.ts';

const HED_FROM_OD = invert3(HED_STAINS);

/**
 * Scales and shifts H, E and DAB concentrations per pixel: c' = alpha_k c + beta_k, blended by tissue
 * weight so glass stays exactly white. Since deconvolution is linear in optical density, the edit is
 * one affine map of OD: OD' = OD + w (OD (A - I) + b), with A = M^-1 diag(alpha) M and b = beta M.
 * An all-white tile comes back unchanged.
 */
export function stainOp(alpha: readonly number[], beta: readonly number[]): PixelOp {
  const m = HED_FROM_OD;
  const s = HED_STAINS;
  // M^-1 diag(alpha - 1) M (3x3, row-major), b = beta M: OD delta = OD D + b.
  const D = [0, 1, 2].flatMap((r) =>
    [0, 1, 2].map((c) => m[r][0] * (alpha[0] - 1) * s[0][c] + m[r][1] * (alpha[1] - 1) * s[1][c] + m[r][2] * (alpha[2] - 1) * s[2][c]),
  );
  const b = [0, 1, 2].map((c) => beta[0] * s[0][c] + beta[1] * s[1][c] + beta[2] * s[2][c]);
  return { kind: 'od-affine', m: D, b };
}

export function scaleStains(img: RgbImage, alpha: readonly number[], beta: readonly number[]): RgbImage {
  return applyPixelOps(img, [stainOp(alpha, beta)]);
}

defineTransform({
  name: 'hed-jitter',
  kind: 'stain',
  description:
    'Tellez et al. HED jitter: per stain alpha ~ U(1-sigma, 1+sigma), beta ~ U(-sigma, sigma) on H, E, DAB concentrations; glass untouched',
  schema: z.object({ sigma: z.number().min(0).max(1).default(0.05) }),
  presets: { light: { sigma: 0.05 }, strong: { sigma: 0.2 } },
  fuse:
    ({ sigma }) =>
    (rng: Rng) => {
      const alpha = [0, 1, 2].map(() => rng.uniform(1 - sigma, 1 + sigma));
      const beta = [0, 1, 2].map(() => rng.uniform(-sigma, sigma));
      return stainOp(alpha, beta);
    },
});

/** Applies a per-pixel function to tissue pixels, blending by tissue weight when protecting glass. */
function perPixel(img: RgbImage, protect: boolean, fn: (r: number, g: number, b: number, out: Uint8Array, o: number) => void): RgbImage {
  const out = createImage(img.width, img.height, 0);
  const d = img.data;
  const tmp = new Uint8Array(3);
  for (let i = 0; i < d.length; i += 3) {
    const w = protect ? tissueWeight(d[i], d[i + 1], d[i + 2]) : 1;
    if (w === 0) {
      out.data[i] = d[i];
      out.data[i + 1] = d[i + 1];
      out.data[i + 2] = d[i + 2];
      continue;
    }
    fn(d[i], d[i + 1], d[i + 2], tmp, 0);
    if (w === 1) {
      out.data[i] = tmp[0];
      out.data[i + 1] = tmp[1];
      out.data[i + 2] = tmp[2];
    } else {
      for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(d[i + c] + w * (tmp[c] - d[i + c]));
    }
  }
  return out;
}

const protectBackground = z.boolean().default(true);

defineTransform({
  name: 'hsv-jitter',
  kind: 'colour',
  description: 'Hue shift ~ U(-hue, hue) (fraction of the colour wheel), saturation and value scaled by U(1-x, 1+x)',
  schema: z.object({
    hue: z.number().min(0).max(0.5).default(0.04),
    saturation: z.number().min(0).max(1).default(0.1),
    value: z.number().min(0).max(1).default(0.1),
    protectBackground,
  }),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const dh = rng.uniform(-p.hue, p.hue);
    const ks = rng.uniform(1 - p.saturation, 1 + p.saturation);
    const kv = rng.uniform(1 - p.value, 1 + p.value);
    const hsv = new Float64Array(3);
    return perPixel(img, p.protectBackground, (r, g, b, out, o) => {
      rgbToHsv(r, g, b, hsv);
      hsvToRgb(hsv[0] + dh, Math.min(1, hsv[1] * ks), Math.min(1, hsv[2] * kv), out, o);
    });
  },
});

export function brightnessLut(delta: number): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, v) => clampByte(v + 255 * delta));
}

export function contrastLut(factor: number, mean = 128): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, v) => clampByte(mean + (v - mean) * factor));
}

export function gammaLut(gamma: number): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, v) => clampByte(255 * (v / 255) ** gamma));
}

defineTransform({
  name: 'brightness',
  kind: 'colour',
  description: 'Adds U(-delta, delta) x 255 to every channel',
  schema: z.object({ delta: z.number().min(0).max(1).default(0.1), protectBackground }),
  fuse:
    (p) =>
    (rng: Rng): PixelOp => ({ kind: 'lut', lut: brightnessLut(rng.uniform(-p.delta, p.delta)), protect: p.protectBackground }),
});

defineTransform({
  name: 'contrast',
  kind: 'colour',
  description: 'Scales values about mid-grey by U(1-factor, 1+factor)',
  schema: z.object({ factor: z.number().min(0).max(1).default(0.2), protectBackground }),
  fuse:
    (p) =>
    (rng: Rng): PixelOp => ({ kind: 'lut', lut: contrastLut(rng.uniform(1 - p.factor, 1 + p.factor)), protect: p.protectBackground }),
});

defineTransform({
  name: 'gamma',
  kind: 'colour',
  description: 'Tone curve v^gamma with gamma ~ U(1-range, 1+range)',
  schema: z.object({ range: z.number().min(0).max(0.9).default(0.2), protectBackground }),
  fuse:
    (p) =>
    (rng: Rng): PixelOp => ({ kind: 'lut', lut: gammaLut(rng.uniform(1 - p.range, 1 + p.range)), protect: p.protectBackground }),
});
