import { ConfigError } from '../core/index.ts';
import { detectorRegistry, l2normalise, type FeatureSet, type OodDetector } from './detectors.ts';
import { pinvSymmetric } from './linearHead.ts';
import { meanRows } from './linalg.ts';

/** Maximum-likelihood covariance (divided by n, as scikit-learn's EmpiricalCovariance) of rows minus their centres. */
function empiricalPrecision(x: Float32Array, n: number, d: number, centre: (i: number) => Float64Array): Float64Array {
  const cov = new Float64Array(d * d);
  const diff = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const mu = centre(i);
    for (let j = 0; j < d; j++) diff[j] = x[i * d + j] - mu[j];
    for (let a = 0; a < d; a++) for (let b = a; b < d; b++) cov[a * d + b] += diff[a] * diff[b];
  }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      cov[a * d + b] /= n;
      cov[b * d + a] = cov[a * d + b];
    }
  // EmpiricalCovariance's precision_ is pinvh(covariance_): defined for dead (constant) channels too.
  return pinvSymmetric(cov, d);
}

function quadratic(p: Float64Array, d: number, x: Float32Array, offset: number, mu: Float64Array, diff: Float64Array): number {
  for (let j = 0; j < d; j++) diff[j] = x[offset + j] - mu[j];
  let s = 0;
  for (let a = 0; a < d; a++) {
    let row = 0;
    for (let b = 0; b < d; b++) row += p[a * d + b] * diff[b];
    s += diff[a] * row;
  }
  return s;
}

/**
 * The Mahalanobis family on penultimate features, as OpenOOD v1.5 computes it: class means and one
 * covariance shared by all classes (maximum likelihood, pseudo-inverse precision).
 * - `rmds`, relative Mahalanobis (Ren et al. 2021): min over classes of MD_c(x) - MD_0(x), where MD_0 is
 *   the distance under one Gaussian of all training features; removes the part of the distance every
 *   class shares (near-OOD on transformer features).
 * - `mahalanobis++` (Mueller & Hein 2025): features L2-normalised first, then min over classes of MD_c;
 *   normalisation makes the shared-covariance assumption hold for foundation-model features.
 */
function mahalanobisFamily(name: 'rmds' | 'mahalanobis++'): OodDetector {
  let d = 0;
  let means: Float64Array[] = [];
  let precision: Float64Array = new Float64Array(0);
  let wholeMean: Float64Array = new Float64Array(0);
  let wholePrecision: Float64Array = new Float64Array(0);
  const prepare = (x: FeatureSet) => (name === 'mahalanobis++' ? l2normalise(x.features, x.n, x.d) : x.features);
  return {
    name,
    fit(train) {
      if (!train.labels) throw new ConfigError(`${name} needs class labels of the training tiles`);
      d = train.d;
      const features = prepare(train);
      const labels = train.labels;
      const classes = [...new Set(labels)].sort((a, b) => a - b);
      means = classes.map((c) =>
        meanRows(
          features,
          train.n,
          d,
          Array.from(labels.keys()).filter((i) => labels[i] === c),
        ),
      );
      precision = empiricalPrecision(features, train.n, d, (i) => means[classes.indexOf(labels[i])]);
      if (name === 'rmds') {
        wholeMean = meanRows(features, train.n, d);
        wholePrecision = empiricalPrecision(features, train.n, d, () => wholeMean);
      }
    },
    score(x) {
      const features = prepare(x);
      const diff = new Float64Array(d);
      return Float64Array.from({ length: x.n }, (_, i) => {
        const background = name === 'rmds' ? quadratic(wholePrecision, d, features, i * d, wholeMean, diff) : 0;
        let best = Infinity;
        for (const mu of means) best = Math.min(best, quadratic(precision, d, features, i * d, mu, diff) - background);
        return best;
      });
    },
    state: () => ({
      json: { d, classes: means.length },
      arrays: {
        means: Float32Array.from(means.flatMap((m) => Array.from(m))),
        precision: Float32Array.from(precision),
        ...(name === 'rmds' ? { wholeMean: Float32Array.from(wholeMean), wholePrecision: Float32Array.from(wholePrecision) } : {}),
      },
    }),
    load(json, arrays) {
      d = json.d as number;
      means = Array.from({ length: json.classes as number }, (_, c) => Float64Array.from(arrays.means.subarray(c * d, (c + 1) * d)));
      precision = Float64Array.from(arrays.precision);
      if (name === 'rmds') {
        wholeMean = Float64Array.from(arrays.wholeMean);
        wholePrecision = Float64Array.from(arrays.wholePrecision);
      }
    },
  };
}

detectorRegistry.register('rmds', () => mahalanobisFamily('rmds'));
detectorRegistry.register('mahalanobis++', () => mahalanobisFamily('mahalanobis++'));
