import { sortedQuantile } from '../core/index.ts';
/**
 * Representation shift (Stacke et al. 2021): the mean over feature channels of the 1-D Wasserstein
 * distance between reference and new-site activations. W1 of two 1-D samples is the area between their
 * quantile functions, computed here on a grid of 256 quantiles.
 */
export function wasserstein1d(a: ArrayLike<number>, b: ArrayLike<number>, grid = 256): number {
  if (!a.length || !b.length) return NaN;
  const sa = Float64Array.from(a).sort();
  const sb = Float64Array.from(b).sort();
  let sum = 0;
  for (let i = 0; i < grid; i++) {
    const t = (i + 0.5) / grid;
    sum += Math.abs(sortedQuantile(sa, t) - sortedQuantile(sb, t));
  }
  return sum / grid;
}

export function representationShift(ref: Float32Array, nRef: number, site: Float32Array, nSite: number, d: number): number {
  let total = 0;
  const colA = new Float64Array(nRef);
  const colB = new Float64Array(nSite);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < nRef; i++) colA[i] = ref[i * d + j];
    for (let i = 0; i < nSite; i++) colB[i] = site[i * d + j];
    total += wasserstein1d(colA, colB);
  }
  return total / d;
}
