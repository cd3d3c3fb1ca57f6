import { createImage, type RgbImage } from '../core/index.ts';
import { OD_LUT } from './colourSpaces.ts';

/**
 * Transforms that can run fused with their neighbours. A pipeline draws each step's random
 * parameters as a FusedOp, then runs a run of consecutive geometric ops as one remapping pass (a
 * flip, a flip and a rotation become one element of the dihedral group) and a run of consecutive
 * pixel ops into one output buffer (the first op reads the input, the rest work in place). The bytes
 * are those of running the steps one by one (test/augment/fused.test.ts checks fused against
 * sequential on random images).
 */
export type FusedOp = GeometricOp | PixelOp;

/**
 * Where each output pixel comes from: src = A dst + t on (x, y) coordinates, A a signed permutation
 * [a00 a01; a10 a11], t given as a function of the input size. `swaps` says the output is h x w.
 */
export interface GeometricOp {
  kind: 'geometric';
  a: readonly [number, number, number, number];
  swaps: boolean;
  offset(width: number, height: number): [number, number];
}

export type PixelOp =
  /** Optical density edit OD' = OD + w (OD M + b), w the tissue weight (see scaleStains). */
  | { kind: 'od-affine'; m: readonly number[]; b: readonly number[] }
  /** Per channel value lookup, blended by tissue weight when protect is set. */
  | { kind: 'lut'; lut: Uint8Array; protect: boolean };

export const flipHorizontalOp: GeometricOp = { kind: 'geometric', a: [-1, 0, 0, 1], swaps: false, offset: (w) => [w - 1, 0] };
export const flipVerticalOp: GeometricOp = { kind: 'geometric', a: [1, 0, 0, -1], swaps: false, offset: (_w, h) => [0, h - 1] };

/** Rotation by k x 90 degrees counter-clockwise. */
export function rotationOp(k: number): GeometricOp {
  const q = ((k % 4) + 4) % 4;
  if (q === 0) return { kind: 'geometric', a: [1, 0, 0, 1], swaps: false, offset: () => [0, 0] };
  if (q === 2) return { kind: 'geometric', a: [-1, 0, 0, -1], swaps: false, offset: (w, h) => [w - 1, h - 1] };
  // ccw: dst (X, Y) takes src (w-1-Y, X); cw: src (Y, h-1-X).
  if (q === 1) return { kind: 'geometric', a: [0, -1, 1, 0], swaps: true, offset: (w) => [w - 1, 0] };
  return { kind: 'geometric', a: [0, 1, -1, 0], swaps: true, offset: (_w, h) => [0, h - 1] };
}

/** Remaps an image by a chain of geometric ops (applied first to last) in one pass. */
export function applyGeometric(img: RgbImage, ops: readonly GeometricOp[]): RgbImage {
  // Compose dst -> src through the chain: src0 = A1 (A2 (... An dst + tn) ...) + t1.
  let [a00, a01, a10, a11] = [1, 0, 0, 1];
  let tx = 0;
  let ty = 0;
  let w = img.width;
  let h = img.height;
  const sizes: [number, number][] = [];
  for (const op of ops) {
    sizes.push([w, h]);
    if (op.swaps) [w, h] = [h, w];
  }
  for (let i = ops.length - 1; i >= 0; i--) {
    // Prepend op i (its own input size is sizes[i]): A <- Ai A, t <- Ai t + ti.
    const [b00, b01, b10, b11] = ops[i].a;
    const [ox, oy] = ops[i].offset(sizes[i][0], sizes[i][1]);
    [a00, a01, a10, a11] = [b00 * a00 + b01 * a10, b00 * a01 + b01 * a11, b10 * a00 + b11 * a10, b10 * a01 + b11 * a11];
    [tx, ty] = [b00 * tx + b01 * ty + ox, b10 * tx + b11 * ty + oy];
  }
  const out = createImage(w, h, 0);
  const src = img.data;
  const dst = out.data;
  if (a00 === 1 && a11 === 1 && a01 === 0 && a10 === 0) {
    dst.set(src);
    return out;
  }
  const sw = img.width;
  // Moving one pixel right in the output moves (a00, a10) in the source.
  const step = (a10 * sw + a00) * 3;
  for (let y = 0, d = 0; y < h; y++) {
    const start = ((a11 * y + ty) * sw + a01 * y + tx) * 3;
    if (step === 3) {
      dst.set(src.subarray(start, start + w * 3), d);
      d += w * 3;
      continue;
    }
    for (let x = 0, s = start; x < w; x++, s += step, d += 3) {
      dst[d] = src[s];
      dst[d + 1] = src[s + 1];
      dst[d + 2] = src[s + 2];
    }
  }
  return out;
}

/**
 * round(255 x 10^-od) for od in [OD_MIN, OD_MAX], 2^16 samples: nearest-sample lookup is within 0.03
 * grey levels of the exact value before rounding, so it maps every 8-bit value's own OD back to itself.
 */
const OD_MIN = -1;
const OD_MAX = 4;
const OD_STEPS = 65536;
const OD_SCALE = OD_STEPS / (OD_MAX - OD_MIN);
const TRANSMIT_BYTE = Uint8Array.from({ length: OD_STEPS + 1 }, (_, i) =>
  Math.min(255, Math.round(255 * Math.exp(-(OD_MIN + i / OD_SCALE) * Math.LN10))),
);

/** The transmitted 8-bit intensity for an optical density (clamped to the table's range). */
function transmittedByte(od: number): number {
  const f = (od - OD_MIN) * OD_SCALE + 0.5;
  return TRANSMIT_BYTE[f <= 0 ? 0 : f >= OD_STEPS ? OD_STEPS : f | 0];
}

/**
 * Runs pixel ops first to last into one output image (the first reads the input, the rest work in
 * place). Each op keeps its own specialised loop: one loop interpreting a list of ops per pixel
 * measured 1.6x slower than these, more than the memory passes it saves on a 256 px tile.
 */
export function applyPixelOps(img: RgbImage, ops: readonly PixelOp[]): RgbImage {
  const out = createImage(img.width, img.height, 0);
  let src = img.data;
  for (const op of ops) {
    if (op.kind === 'od-affine') odAffineLoop(src, out.data, op.m, op.b);
    else lutLoop(src, out.data, op.lut, op.protect);
    src = out.data;
  }
  if (!ops.length) out.data.set(img.data);
  return out;
}

/**
 * OD' = OD + w (OD M + b). Branch-free over glass and tissue: their mix in a tile defeats branch
 * prediction (an early exit for glass made this loop 2.5x slower); w = 0 gives back the input bytes.
 */
function odAffineLoop(d: Uint8Array, o: Uint8Array, m: readonly number[], b: readonly number[]): void {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = m;
  const [b0, b1, b2] = b;
  for (let i = 0; i < d.length; i += 3) {
    const R = d[i];
    const G = d[i + 1];
    const B = d[i + 2];
    const r = OD_LUT[R];
    const g = OD_LUT[G];
    const bl = OD_LUT[B];
    const od = r + g + bl;
    // tissueWeight, inlined here and in lutLoop: as a call it cost 4% of the standard pipeline.
    const w = (R | G | B) === 0 ? 0 : od <= 0.05 ? 0 : od >= 0.2 ? 1 : (od - 0.05) / 0.15;
    const t0 = transmittedByte(r + w * (r * m00 + g * m10 + bl * m20 + b0));
    const t1 = transmittedByte(g + w * (r * m01 + g * m11 + bl * m21 + b1));
    const t2 = transmittedByte(bl + w * (r * m02 + g * m12 + bl * m22 + b2));
    o[i] = w === 0 ? R : t0;
    o[i + 1] = w === 0 ? G : t1;
    o[i + 2] = w === 0 ? B : t2;
  }
}

/** The LUT holds integers, so w = 1 gives lut[v] and w = 0 gives v exactly after the store truncates. */
function lutLoop(d: Uint8Array, o: Uint8Array, lut: Uint8Array, protect: boolean): void {
  for (let i = 0; i < d.length; i += 3) {
    const R = d[i];
    const G = d[i + 1];
    const B = d[i + 2];
    let w = 1;
    if (protect) {
      const od = OD_LUT[R] + OD_LUT[G] + OD_LUT[B];
      w = (R | G | B) === 0 ? 0 : od <= 0.05 ? 0 : od >= 0.2 ? 1 : (od - 0.05) / 0.15;
    }
    o[i] = R + w * (lut[R] - R) + 0.5;
    o[i + 1] = G + w * (lut[G] - G) + 0.5;
    o[i + 2] = B + w * (lut[B] - B) + 0.5;
  }
}

/** Runs a chain of fusable ops: each run of geometric ops, then each run of pixel ops, in order. */
export function applyFused(img: RgbImage, ops: readonly FusedOp[]): RgbImage {
  let out = img;
  let i = 0;
  while (i < ops.length) {
    const geometric = ops[i].kind === 'geometric';
    let j = i;
    while (j < ops.length && (ops[j].kind === 'geometric') === geometric) j++;
    out = geometric ? applyGeometric(out, ops.slice(i, j) as GeometricOp[]) : applyPixelOps(out, ops.slice(i, j) as PixelOp[]);
    i = j;
  }
  return out;
}
