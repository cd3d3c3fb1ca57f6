import { z } from 'zod';
import { ConfigError, createImage, selectQuantile, sortedQuantile, symmetricEigen, type RgbImage, type Rng } from '../core/index.ts';
import { defineTransform } from './transform.ts';

/**
 * Macenko et al. (2009) stain estimation as torchstain and StainTools run it: OD = -ln((I+1)/Io);
 * pixels with any OD below beta dropped; the plane of the two largest eigenvectors of the OD
 * covariance; the extreme angles (alpha and 100-alpha percentiles) give the two stain vectors,
 * haematoxylin first; concentrations by least squares, their 99th percentile as maximum.
 */
export const MACENKO_DEFAULTS = { Io: 240, alpha: 1, beta: 0.15 } as const;
/** The standard reference (torchstain, from Macenko's paper): columns H and E over R, G, B. */
export const MACENKO_HE_REF = [
  [0.5626, 0.2159],
  [0.7201, 0.8012],
  [0.4062, 0.5581],
];
export const MACENKO_MAXC_REF = [1.9705, 1.0308];

export interface StainEstimate {
  /** Stain vectors as rows: [H, E], each over R, G, B, unit length. */
  stains: [number[], number[]];
  maxC: [number, number];
  /** Tissue pixels the estimate used. */
  pixels: number;
}

/** Minimum tissue pixels for a stable estimate; below it transforms pass the tile through. */
const MIN_PIXELS = 50;

function odOf(v: number, Io: number): number {
  return -Math.log((v + 1) / Io);
}

/** OD per byte value for an Io: a table, since every pixel channel is one of 256 values. */
function odTable(Io: number): Float64Array {
  return Float64Array.from({ length: 256 }, (_, v) => odOf(v, Io));
}

/**
 * The stain vectors and maximum concentrations of an image, or undefined with too little tissue. As in
 * Macenko's code and torchstain, the stain plane and angles come from tissue pixels (every channel's OD
 * at least beta) while maxC, the 99th percentile of each concentration, is taken over all pixels: the
 * reference maxCRef was computed that way, so the two must agree for normalised tiles to keep their
 * intensity.
 */
export function estimateStainsMacenko(
  img: RgbImage,
  options: { Io?: number; alpha?: number; beta?: number } = {},
): StainEstimate | undefined {
  return estimateWithConcentrations(img, options)?.estimate;
}

/** The estimate and every pixel's concentrations under it (normalisation needs both; computed once). */
function estimateWithConcentrations(
  img: RgbImage,
  options: { Io?: number; alpha?: number; beta?: number },
): { estimate: StainEstimate; conc: Float32Array } | undefined {
  const Io = options.Io ?? MACENKO_DEFAULTS.Io;
  const alpha = options.alpha ?? MACENKO_DEFAULTS.alpha;
  const beta = options.beta ?? MACENKO_DEFAULTS.beta;
  const lut = odTable(Io);
  const d = img.data;
  const n = d.length / 3;
  const kept = new Int32Array(n);
  let k = 0;
  let mr = 0;
  let mg = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    const r = lut[d[i * 3]];
    const g = lut[d[i * 3 + 1]];
    const b = lut[d[i * 3 + 2]];
    if (r < beta || g < beta || b < beta) continue;
    kept[k++] = i;
    mr += r;
    mg += g;
    mb += b;
  }
  if (k < MIN_PIXELS) return undefined;
  mr /= k;
  mg /= k;
  mb /= k;
  let rr = 0;
  let rg = 0;
  let rb = 0;
  let gg = 0;
  let gb = 0;
  let bb = 0;
  for (let j = 0; j < k; j++) {
    const i = kept[j] * 3;
    const r = lut[d[i]] - mr;
    const g = lut[d[i + 1]] - mg;
    const b = lut[d[i + 2]] - mb;
    rr += r * r;
    rg += r * g;
    rb += r * b;
    gg += g * g;
    gb += g * b;
    bb += b * b;
  }
  const cov = [rr, rg, rb, rg, gg, gb, rb, gb, bb].map((v) => v / (k - 1));
  const { vectors } = symmetricEigen(cov, 3);
  // The two largest eigenvectors span the stain plane; orient them so most OD projects positively.
  const e1 = [vectors[0], vectors[3], vectors[6]];
  const e2 = [vectors[1], vectors[4], vectors[7]];
  if (e1[0] + e1[1] + e1[2] < 0) e1.forEach((_, i) => (e1[i] = -e1[i]));
  if (e2[0] + e2[1] + e2[2] < 0) e2.forEach((_, i) => (e2[i] = -e2[i]));
  const phi = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const i = kept[j] * 3;
    const r = lut[d[i]];
    const g = lut[d[i + 1]];
    const b = lut[d[i + 2]];
    phi[j] = Math.atan2(r * e2[0] + g * e2[1] + b * e2[2], r * e1[0] + g * e1[1] + b * e1[2]);
  }
  phi.sort();
  const minPhi = sortedQuantile(phi, alpha / 100);
  const maxPhi = sortedQuantile(phi, 1 - alpha / 100);
  const vec = (a: number) => {
    const v = [0, 1, 2].map((c) => e1[c] * Math.cos(a) + e2[c] * Math.sin(a));
    const nrm = Math.hypot(v[0], v[1], v[2]);
    return v.map((x) => x / nrm);
  };
  const vMin = vec(minPhi);
  const vMax = vec(maxPhi);
  // Haematoxylin absorbs more red than eosin: the vector with the larger red component is H.
  const stains: [number[], number[]] = vMin[0] > vMax[0] ? [vMin, vMax] : [vMax, vMin];
  // One colour only (a flat tile): the two extremes coincide and no second stain can be separated.
  const cos = stains[0][0] * stains[1][0] + stains[0][1] * stains[1][1] + stains[0][2] * stains[1][2];
  if (!(cos < Math.cos((1 * Math.PI) / 180))) return undefined;
  const conc = concentrations(img, stains, Io);
  const h = new Float64Array(n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    h[j] = conc[j * 2];
    e[j] = conc[j * 2 + 1];
  }
  return { estimate: { stains, maxC: [selectQuantile(h, 0.99), selectQuantile(e, 0.99)], pixels: k }, conc };
}

/** Least-squares H and E concentrations per pixel (interleaved pairs) for given stain vectors. */
export function concentrations(img: RgbImage, stains: readonly (readonly number[])[], Io: number): Float32Array {
  const [h, e] = stains;
  // Normal equations of the 3x2 system OD = C x [h; e].
  const a = h[0] * h[0] + h[1] * h[1] + h[2] * h[2];
  const b = h[0] * e[0] + h[1] * e[1] + h[2] * e[2];
  const c = e[0] * e[0] + e[1] * e[1] + e[2] * e[2];
  const det = a * c - b * b;
  const lut = odTable(Io);
  const d = img.data;
  const out = new Float32Array((d.length / 3) * 2);
  for (let i = 0, j = 0; i < d.length; i += 3, j += 2) {
    const r = lut[d[i]];
    const g = lut[d[i + 1]];
    const bl = lut[d[i + 2]];
    const ph = r * h[0] + g * h[1] + bl * h[2];
    const pe = r * e[0] + g * e[1] + bl * e[2];
    out[j] = (c * ph - b * pe) / det;
    out[j + 1] = (a * pe - b * ph) / det;
  }
  return out;
}

/**
 * Rebuilds RGB from concentrations, Io x exp(-C x stains). Glass (OD below beta in any channel of the
 * source) is copied from the source, so background stays exactly as it was.
 */
export function recompose(src: RgbImage, conc: Float32Array, stains: readonly (readonly number[])[], Io: number, beta: number): RgbImage {
  const out = createImage(src.width, src.height, 0);
  const d = src.data;
  const [h, e] = stains;
  const lut = odTable(Io);
  for (let i = 0, j = 0; i < d.length; i += 3, j += 2) {
    const odSum = lut[d[i]] + lut[d[i + 1]] + lut[d[i + 2]];
    // Fade from copy (summed OD below beta) to recomposed (above 2 beta): no seams at tissue edges.
    const w = odSum <= beta ? 0 : odSum >= 2 * beta ? 1 : (odSum - beta) / beta;
    for (let ch = 0; ch < 3; ch++) {
      const v = Io * Math.exp(-(conc[j] * h[ch] + conc[j + 1] * e[ch]));
      const blended = d[i + ch] + w * (v - d[i + ch]);
      out.data[i + ch] = blended <= 0 ? 0 : blended >= 255 ? 255 : Math.round(blended);
    }
  }
  return out;
}

export interface MacenkoState {
  method: 'macenko';
  Io: number;
  alpha: number;
  beta: number;
  /** Target stain vectors (rows H, E) and maximum concentrations. */
  stains: [number[], number[]];
  maxC: [number, number];
}

/** Macenko normalisation to a target; the fitted state is plain JSON so a model directory carries it. */
export class MacenkoNormalizer {
  state: MacenkoState;

  constructor(state?: Partial<MacenkoState>) {
    this.state = {
      method: 'macenko',
      Io: state?.Io ?? MACENKO_DEFAULTS.Io,
      alpha: state?.alpha ?? MACENKO_DEFAULTS.alpha,
      beta: state?.beta ?? MACENKO_DEFAULTS.beta,
      stains: state?.stains ?? [MACENKO_HE_REF.map((r) => r[0]), MACENKO_HE_REF.map((r) => r[1])],
      maxC: state?.maxC ?? [MACENKO_MAXC_REF[0], MACENKO_MAXC_REF[1]],
    };
  }

  fit(target: RgbImage): this {
    const est = estimateStainsMacenko(target, this.state);
    if (!est) throw new ConfigError(`Macenko fit: the target has fewer than ${MIN_PIXELS} tissue pixels`);
    this.state = { ...this.state, stains: est.stains, maxC: est.maxC };
    return this;
  }

  transform(img: RgbImage): RgbImage {
    const { Io, beta } = this.state;
    const found = estimateWithConcentrations(img, this.state);
    if (!found) return { width: img.width, height: img.height, data: img.data.slice() };
    const { estimate: est, conc } = found;
    const s0 = this.state.maxC[0] / est.maxC[0];
    const s1 = this.state.maxC[1] / est.maxC[1];
    for (let j = 0; j < conc.length; j += 2) {
      conc[j] *= s0;
      conc[j + 1] *= s1;
    }
    return recompose(img, conc, this.state.stains, Io, beta);
  }

  toJSON(): MacenkoState {
    return this.state;
  }

  static fromJSON(state: MacenkoState): MacenkoNormalizer {
    return new MacenkoNormalizer(state);
  }
}

defineTransform({
  name: 'macenko-augment',
  kind: 'stain',
  description:
    "Stain augmentation on the tile's own Macenko stain vectors: concentrations scaled by U(1-sigma1, 1+sigma1) and shifted by U(-sigma2, sigma2) per stain",
  schema: z.object({ sigma1: z.number().min(0).max(1).default(0.2), sigma2: z.number().min(0).max(1).default(0.2) }),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const alpha = [rng.uniform(1 - p.sigma1, 1 + p.sigma1), rng.uniform(1 - p.sigma1, 1 + p.sigma1)];
    const beta = [rng.uniform(-p.sigma2, p.sigma2), rng.uniform(-p.sigma2, p.sigma2)];
    const found = estimateWithConcentrations(img, {});
    if (!found) return { width: img.width, height: img.height, data: img.data.slice() };
    const { estimate: est, conc } = found;
    for (let j = 0; j < conc.length; j += 2) {
      conc[j] = conc[j] * alpha[0] + beta[0];
      conc[j + 1] = conc[j + 1] * alpha[1] + beta[1];
    }
    return recompose(img, conc, est.stains, MACENKO_DEFAULTS.Io, MACENKO_DEFAULTS.beta);
  },
});

defineTransform({
  name: 'macenko-normalize',
  kind: 'normalise',
  description: 'Macenko normalisation to fitted target stains (default: the standard reference HERef, maxCRef)',
  schema: z.object({
    stains: z.array(z.array(z.number()).length(3)).length(2).optional(),
    maxC: z.array(z.number().positive()).length(2).optional(),
  }),
  make: (p) => {
    const n = new MacenkoNormalizer({ stains: p.stains as [number[], number[]] | undefined, maxC: p.maxC as [number, number] | undefined });
    return (img: RgbImage) => n.transform(img);
  },
});
