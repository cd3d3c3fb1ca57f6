import { createImage, type RgbImage } from '../core/index.ts';

/**
 * Ruifrok & Johnston (2001) stain vectors, rows H, E, DAB, each normalised to unit length as in their
 * paper: optical density OD (row vector over R, G, B) = concentrations (H, E, D) x HED_STAINS.
 */
export const HED_STAINS: readonly (readonly number[])[] = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
].map((v) => {
  const n = Math.hypot(v[0], v[1], v[2]);
  return v.map((x) => x / n);
});

export function invert3(m: readonly (readonly number[])[]): number[][] {
  const [a, b, c] = m[0];
  const [d, e, f] = m[1];
  const [g, h, i] = m[2];
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) throw new Error('singular 3x3 matrix');
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}

export const HED_FROM_OD = invert3(HED_STAINS);

/** OD = -log10(max(I,1)/255) for every 8-bit value: a lookup, not a log per pixel. */
export const OD_LUT = Float32Array.from({ length: 256 }, (_, v) => -Math.log10(Math.max(v, 1) / 255));

/**
 * Colour deconvolution: per-pixel stain concentrations (H, E, DAB), interleaved, from RGB.
 * OD = -log10(max(I,1)/255), concentrations = OD x inverse(stain matrix).
 */
export function rgbToHed(img: RgbImage, out = new Float32Array(img.width * img.height * 3)): Float32Array {
  const d = img.data;
  const m = HED_FROM_OD;
  for (let i = 0; i < d.length; i += 3) {
    const r = OD_LUT[d[i]];
    const g = OD_LUT[d[i + 1]];
    const b = OD_LUT[d[i + 2]];
    out[i] = r * m[0][0] + g * m[1][0] + b * m[2][0];
    out[i + 1] = r * m[0][1] + g * m[1][1] + b * m[2][1];
    out[i + 2] = r * m[0][2] + g * m[1][2] + b * m[2][2];
  }
  return out;
}

function odToByte(od: number): number {
  const v = 255 * Math.exp(-od * Math.LN10);
  return v >= 255 ? 255 : v <= 0 ? 0 : Math.round(v);
}

/** Recomposition: RGB from stain concentrations (the inverse of rgbToHed up to 8-bit rounding). */
export function hedToRgb(hed: Float32Array, width: number, height: number): RgbImage {
  const out = createImage(width, height, 0);
  const s = HED_STAINS;
  for (let i = 0; i < hed.length; i += 3) {
    const h = hed[i];
    const e = hed[i + 1];
    const dab = hed[i + 2];
    out.data[i] = odToByte(h * s[0][0] + e * s[1][0] + dab * s[2][0]);
    out.data[i + 1] = odToByte(h * s[0][1] + e * s[1][1] + dab * s[2][1]);
    out.data[i + 2] = odToByte(h * s[0][2] + e * s[1][2] + dab * s[2][2]);
  }
  return out;
}

/**
 * How much a pixel is tissue rather than glass, 0..1, from its summed optical density: 0 below 0.05
 * (white background), 1 above 0.2, linear between, so stain edits fade out smoothly at tissue edges
 * and leave the background exactly as it was. Pure black (no light at all) also weighs 0.
 */
export function tissueWeight(r: number, g: number, b: number): number {
  // Pure black transmitted no light: there is nothing to deconvolve, so it is left alone too.
  if (r === 0 && g === 0 && b === 0) return 0;
  const od = OD_LUT[r] + OD_LUT[g] + OD_LUT[b];
  return od <= 0.05 ? 0 : od >= 0.2 ? 1 : (od - 0.05) / 0.15;
}

// sRGB <-> CIE L*a*b* (D65), for Reinhard normalisation.
const SRGB_TO_LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});
const XN = 0.95047;
const ZN = 1.08883;
const labF = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
const labFinv = (t: number) => (t * t * t > 216 / 24389 ? t * t * t : (116 * t - 16) / (24389 / 27));
const linearToSrgbByte = (c: number) => {
  const v = c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
  const b = Math.round(v * 255);
  return b < 0 ? 0 : b > 255 ? 255 : b;
};

export function rgbToLab(img: RgbImage, out = new Float32Array(img.width * img.height * 3)): Float32Array {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    const r = SRGB_TO_LINEAR[d[i]];
    const g = SRGB_TO_LINEAR[d[i + 1]];
    const b = SRGB_TO_LINEAR[d[i + 2]];
    const x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / XN;
    const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
    const z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / ZN;
    const fx = labF(x);
    const fy = labF(y);
    const fz = labF(z);
    out[i] = 116 * fy - 16;
    out[i + 1] = 500 * (fx - fy);
    out[i + 2] = 200 * (fy - fz);
  }
  return out;
}

export function labToRgb(lab: Float32Array, width: number, height: number): RgbImage {
  const out = createImage(width, height, 0);
  for (let i = 0; i < lab.length; i += 3) {
    const fy = (lab[i] + 16) / 116;
    const fx = fy + lab[i + 1] / 500;
    const fz = fy - lab[i + 2] / 200;
    const x = labFinv(fx) * XN;
    const y = labFinv(fy);
    const z = labFinv(fz) * ZN;
    out.data[i] = linearToSrgbByte(3.2404542 * x - 1.5371385 * y - 0.4985314 * z);
    out.data[i + 1] = linearToSrgbByte(-0.969266 * x + 1.8760108 * y + 0.041556 * z);
    out.data[i + 2] = linearToSrgbByte(0.0556434 * x - 0.2040259 * y + 1.0572252 * z);
  }
  return out;
}

/** RGB (0..255) to HSV (h in [0,1), s, v in [0,1]) and back, in place on scalars. */
export function rgbToHsv(r: number, g: number, b: number, out: Float64Array): void {
  const mx = Math.max(r, g, b);
  const mn = Math.min(r, g, b);
  const d = mx - mn;
  let h = 0;
  if (d > 0) {
    if (mx === r) h = ((g - b) / d + 6) % 6;
    else if (mx === g) h = (b - r) / d + 2;
    else h = (r - g) / d + 4;
    h /= 6;
  }
  out[0] = h;
  out[1] = mx === 0 ? 0 : d / mx;
  out[2] = mx / 255;
}

export function hsvToRgb(h: number, s: number, v: number, out: Uint8Array, o: number): void {
  const hh = (((h % 1) + 1) % 1) * 6;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  let r: number;
  let g: number;
  let b: number;
  switch (i) {
    case 0:
      r = v;
      g = t;
      b = p;
      break;
    case 1:
      r = q;
      g = v;
      b = p;
      break;
    case 2:
      r = p;
      g = v;
      b = t;
      break;
    case 3:
      r = p;
      g = q;
      b = v;
      break;
    case 4:
      r = t;
      g = p;
      b = v;
      break;
    default:
      r = v;
      g = p;
      b = q;
  }
  const c = (x: number) => (x <= 0 ? 0 : x >= 1 ? 255 : Math.round(x * 255));
  out[o] = c(r);
  out[o + 1] = c(g);
  out[o + 2] = c(b);
}

/** Mixes a transformed pixel back toward the original by tissue weight (background stays exact). */
export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
