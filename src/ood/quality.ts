import { ConfigError, sortedQuantile } from '../core/index.ts';
import { detectorRegistry, type FeatureSet, type OodDetector } from './detectors.ts';
import { cholesky, forwardSolve } from './linalg.ts';
import { QUALITY_DIM, QUALITY_FEATURES } from './qualityFeatures.ts';

const at = (name: (typeof QUALITY_FEATURES)[number]) => QUALITY_FEATURES.indexOf(name);

/**
 * A quality-control detector over some of the quality features: each feature is standardised by the
 * in-distribution median and MAD (robust to the few artifacts a training set holds), then scored
 * one-sided in the direction the artifact moves it (blur lowers sharpness, ink raises ink_share), or,
 * for a group, by the Mahalanobis distance of the standardised features (shrunk covariance).
 */
function qcDetector(name: string, features: (typeof QUALITY_FEATURES)[number][], direction: (1 | -1 | 0)[], shrinkage = 0.2): OodDetector {
  const idx = features.map(at);
  let median: Float64Array = new Float64Array(idx.length);
  let scale: Float64Array = new Float64Array(idx.length).fill(1);
  let chol: Float64Array = new Float64Array(0);
  const standard = (x: FeatureSet, i: number, out: Float64Array) => {
    const q = x.quality!;
    idx.forEach((f, j) => (out[j] = (q[i * QUALITY_DIM + f] - median[j]) / scale[j]));
  };
  const check = (x: FeatureSet) => {
    if (!x.quality)
      throw new ConfigError(`${name} needs the tiles' quality features (gradelab ood computes them when a qc-* detector is asked for)`);
  };
  const mahalanobis = direction.every((s) => s === 0);
  return {
    name,
    fit(train) {
      check(train);
      const d = idx.length;
      idx.forEach((f, j) => {
        const col = Float64Array.from({ length: train.n }, (_, i) => train.quality![i * QUALITY_DIM + f]).sort();
        median[j] = sortedQuantile(col, 0.5);
        const dev = col.map((v) => Math.abs(v - median[j])).sort();
        // 1.4826 MAD estimates the standard deviation under normality; a floor keeps constant features finite.
        scale[j] = Math.max(1.4826 * sortedQuantile(dev, 0.5), 1e-3 * (Math.abs(median[j]) + 1e-3));
      });
      if (!mahalanobis) return;
      const cov = new Float64Array(d * d);
      const z = new Float64Array(d);
      for (let i = 0; i < train.n; i++) {
        standard(train, i, z);
        for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b] += z[a] * z[b];
      }
      for (let a = 0; a < d; a++)
        for (let b = 0; b < d; b++)
          cov[a * d + b] = (1 - shrinkage) * (cov[a * d + b] / Math.max(1, train.n - 1)) + (a === b ? shrinkage : 0);
      chol = cholesky(cov, d);
    },
    score(x) {
      check(x);
      const d = idx.length;
      const z = new Float64Array(d);
      const y = new Float64Array(d);
      return Float64Array.from({ length: x.n }, (_, i) => {
        standard(x, i, z);
        if (!mahalanobis) return Math.max(...direction.map((s, j) => s * z[j]));
        forwardSolve(chol, d, z, y);
        return y.reduce((s, v) => s + v * v, 0);
      });
    },
    state: () => ({
      json: { features, direction },
      arrays: { median: Float32Array.from(median), scale: Float32Array.from(scale), chol: Float32Array.from(chol) },
    }),
    load(_json, arrays) {
      median = Float64Array.from(arrays.median);
      scale = Float64Array.from(arrays.scale);
      chol = Float64Array.from(arrays.chol);
    },
  };
}

/** Blur and defocus: sharpness falls. */
detectorRegistry.register('qc-focus', () => qcDetector('qc-focus', ['sharpness'], [-1]));
/** Pen and marker ink: colours H&E does not make. */
detectorRegistry.register('qc-ink', () => qcDetector('qc-ink', ['ink_share'], [1]));
/** Folds and air bubbles: dark, dense, edged. */
detectorRegistry.register('qc-fold', () => qcDetector('qc-fold', ['dark_share', 'od_p95', 'edge_share'], [1, 1, 1]));
/** Tissue of another kind or stain: outliers in stain amounts and saturation. */
detectorRegistry.register('qc-stain', () => qcDetector('qc-stain', ['h_od', 'e_od', 'saturation', 'od_mean'], [0, 0, 0, 0]));
/** All quality features together. */
detectorRegistry.register('qc-all', () =>
  qcDetector(
    'qc-all',
    [...QUALITY_FEATURES],
    QUALITY_FEATURES.map(() => 0 as const),
  ),
);

export const QUALITY_DETECTORS = ['qc-focus', 'qc-ink', 'qc-fold', 'qc-stain', 'qc-all'];
