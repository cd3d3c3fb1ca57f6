import { ConfigError, symmetricEigen } from '../core/index.ts';
import type { FeatureSet } from './detectors.ts';

/**
 * Pseudo-inverse of a symmetric positive semi-definite matrix by its eigen-decomposition; eigenvalues
 * below a relative tolerance count as zero (NumPy's pinv does the same with singular values).
 */
export function pinvSymmetric(a: Float64Array, d: number, rtol = 1e-10): Float64Array {
  const { values, vectors } = symmetricEigen(a, d);
  const cutoff = Math.max(...values.map(Math.abs)) * rtol;
  const out = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    if (Math.abs(values[c]) <= cutoff) continue;
    const inv = 1 / values[c];
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i * d + j] += vectors[i * d + c] * inv * vectors[j * d + c];
  }
  return out;
}

/**
 * A linear head's W (K x d, one row per logit) and b, recovered from features and the logits the head
 * made of them by least squares (minimum norm where features never vary, as dead ReLU channels do).
 * gradelab's heads (softmax, CORAL, multitask) are affine maps of the features, so the fit is exact;
 * a head that is not is refused.
 */
export function recoverLinearHead(x: FeatureSet): { w: Float64Array; b: Float64Array } {
  const { n, d, k } = x;
  const m = d + 1;
  const ata = new Float64Array(m * m);
  const atl = new Float64Array(m * k);
  const row = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x.features[i * d + j];
    row[d] = 1;
    for (let a = 0; a < m; a++) {
      for (let c = a; c < m; c++) ata[a * m + c] += row[a] * row[c];
      for (let c = 0; c < k; c++) atl[a * k + c] += row[a] * x.logits[i * k + c];
    }
  }
  for (let a = 0; a < m; a++) for (let c = 0; c < a; c++) ata[a * m + c] = ata[c * m + a];
  const inv = pinvSymmetric(ata, m, 1e-12);
  const beta = new Float64Array(m * k);
  for (let a = 0; a < m; a++) for (let c = 0; c < k; c++) for (let j = 0; j < m; j++) beta[a * k + c] += inv[a * m + j] * atl[j * k + c];
  const w = new Float64Array(k * d);
  const b = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < d; j++) w[c * d + j] = beta[j * k + c];
    b[c] = beta[d * k + c];
  }
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = b[c];
      for (let j = 0; j < d; j++) s += w[c * d + j] * x.features[i * d + j];
      worst = Math.max(worst, Math.abs(s - x.logits[i * k + c]));
      scale = Math.max(scale, Math.abs(x.logits[i * k + c]));
    }
  }
  if (worst > 1e-3 * scale)
    throw new ConfigError(
      `ViM needs a head that is a linear map of the features; the logits differ from the best linear fit by ${worst.toPrecision(3)}`,
    );
  return { w, b };
}

/** ViM's origin u = -pinv(W) b, with pinv(W) = W^T pinv(W W^T) for W of K rows. */
export function vimOrigin(w: Float64Array, b: Float64Array, k: number, d: number): Float64Array {
  const wwt = new Float64Array(k * k);
  for (let a = 0; a < k; a++) for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) wwt[a * k + c] += w[a * d + j] * w[c * d + j];
  const inv = pinvSymmetric(wwt, k);
  const t = new Float64Array(k);
  for (let a = 0; a < k; a++) for (let c = 0; c < k; c++) t[a] += inv[a * k + c] * b[c];
  const u = new Float64Array(d);
  for (let j = 0; j < d; j++) for (let a = 0; a < k; a++) u[j] -= w[a * d + j] * t[a];
  return u;
}
