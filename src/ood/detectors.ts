import { ConfigError, createRng, Registry, shuffled } from '../core/index.ts';
import { cholesky, forwardSolve, logSumExp, meanRows } from './linalg.ts';

/**
 * What a detector sees of a model: logits (n x K) and penultimate features (n x d) of tiles, and for
 * fitting, in-distribution training tiles with their class labels. Every score is "higher = more
 * out-of-distribution".
 */
export interface FeatureSet {
  n: number;
  k: number;
  d: number;
  logits: Float32Array;
  features: Float32Array;
  labels?: Int32Array;
  /** Slide-quality features of the tiles, n x QUALITY_DIM (quality.ts), for the qc-* detectors. */
  quality?: Float32Array;
}

export interface OodDetector {
  readonly name: string;
  fit(train: FeatureSet): void;
  score(x: FeatureSet): Float64Array;
  /** Fitted state; large arrays go to binary files alongside. */
  state(): { json: Record<string, unknown>; arrays: Record<string, Float32Array> };
  load(json: Record<string, unknown>, arrays: Record<string, Float32Array>): void;
}

export const detectorRegistry = new Registry<(params: Record<string, number>) => OodDetector>('OOD detector');

function softmaxMax(logits: Float32Array, i: number, k: number): number {
  const lse = logSumExp(logits, i * k, k);
  let m = -Infinity;
  for (let c = 0; c < k; c++) m = Math.max(m, logits[i * k + c]);
  return Math.exp(m - lse);
}

/** Logit-based detectors need no fitting. */
function logitDetector(name: string, score: (x: FeatureSet, i: number) => number): OodDetector {
  return {
    name,
    fit() {},
    score(x) {
      return Float64Array.from({ length: x.n }, (_, i) => score(x, i));
    },
    state: () => ({ json: {}, arrays: {} }),
    load() {},
  };
}

// Hendrycks & Gimpel 2017: maximum softmax probability.
detectorRegistry.register('msp', () => logitDetector('msp', (x, i) => -softmaxMax(x.logits, i, x.k)));
// Hendrycks et al. 2022: maximum logit.
detectorRegistry.register('max-logit', () => logitDetector('max-logit', (x, i) => -Math.max(...x.logits.subarray(i * x.k, (i + 1) * x.k))));
// Liu et al. 2020: energy -T logsumexp(f/T).
detectorRegistry.register('energy', (p) =>
  logitDetector('energy', (x, i) => -(p.temperature ?? 1) * logSumExp(x.logits, i * x.k, x.k, p.temperature ?? 1)),
);

/**
 * Mahalanobis distance (Lee et al. 2018): class-conditional means, one covariance shared by all classes
 * and shrunk toward its mean variance (shrinkage alpha), score = distance to the nearest class mean.
 */
detectorRegistry.register('mahalanobis', (p) => {
  const shrink = p.shrinkage ?? 0.1;
  let d = 0;
  let means: Float64Array[] = [];
  let chol: Float64Array = new Float64Array(0);
  return {
    name: 'mahalanobis',
    fit(train) {
      if (!train.labels) throw new ConfigError('mahalanobis needs class labels of the training tiles');
      d = train.d;
      const classes = [...new Set(train.labels)].sort((a, b) => a - b);
      means = classes.map((c) =>
        meanRows(
          train.features,
          train.n,
          d,
          Array.from(train.labels!.keys()).filter((i) => train.labels![i] === c),
        ),
      );
      const cov = new Float64Array(d * d);
      const diff = new Float64Array(d);
      for (let i = 0; i < train.n; i++) {
        const mu = means[classes.indexOf(train.labels[i])];
        for (let j = 0; j < d; j++) diff[j] = train.features[i * d + j] - mu[j];
        for (let a = 0; a < d; a++) {
          const da = diff[a];
          for (let b = a; b < d; b++) cov[a * d + b] += da * diff[b];
        }
      }
      let trace = 0;
      for (let a = 0; a < d; a++) {
        for (let b = a; b < d; b++) {
          cov[a * d + b] /= Math.max(1, train.n - 1);
          cov[b * d + a] = cov[a * d + b];
        }
        trace += cov[a * d + a];
      }
      const avg = trace / d || 1e-6;
      for (let a = 0; a < d; a++) {
        for (let b = 0; b < d; b++) cov[a * d + b] = (1 - shrink) * cov[a * d + b] + (a === b ? shrink * avg + 1e-9 : 0);
      }
      chol = cholesky(cov, d);
    },
    score(x) {
      const out = new Float64Array(x.n);
      const diff = new Float64Array(d);
      const y = new Float64Array(d);
      for (let i = 0; i < x.n; i++) {
        let best = Infinity;
        for (const mu of means) {
          for (let j = 0; j < d; j++) diff[j] = x.features[i * d + j] - mu[j];
          forwardSolve(chol, d, diff, y);
          let s = 0;
          for (let j = 0; j < d; j++) s += y[j] * y[j];
          best = Math.min(best, s);
        }
        out[i] = best;
      }
      return out;
    },
    state: () => ({
      json: { d, shrinkage: shrink, classes: means.length },
      arrays: { means: Float32Array.from(means.flatMap((m) => Array.from(m))), chol: Float32Array.from(chol) },
    }),
    load(json, arrays) {
      d = json.d as number;
      const c = json.classes as number;
      means = Array.from({ length: c }, (_, i) => Float64Array.from(arrays.means.subarray(i * d, (i + 1) * d)));
      chol = Float64Array.from(arrays.chol);
    },
  };
});

/** Rows scaled to unit length (a zero row stays zero). */
export function l2normalise(x: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j] ** 2;
    const inv = 1 / (Math.sqrt(s) || 1);
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j] * inv;
  }
  return out;
}

/**
 * Deep k-nearest neighbours (Sun et al. 2022): distance to the k-th nearest training feature after L2
 * normalisation. Exact search: for unit vectors, distance^2 = 2 - 2 dot, so the k largest dot products
 * are kept per query with a bounded insertion list; the inner loop is a plain dot product (no
 * allocation), blocked four reference rows at a time.
 */
export function kthNeighbourDistance(
  ref: Float32Array,
  nRef: number,
  query: Float32Array,
  nQuery: number,
  d: number,
  k: number,
): Float64Array {
  const out = new Float64Array(nQuery);
  const top = new Float64Array(k);
  for (let q = 0; q < nQuery; q++) {
    top.fill(-Infinity);
    const qo = q * d;
    let r = 0;
    const consider = (dot: number) => {
      if (dot <= top[k - 1]) return;
      let j = k - 1;
      while (j > 0 && top[j - 1] < dot) {
        top[j] = top[j - 1];
        j--;
      }
      top[j] = dot;
    };
    for (; r + 3 < nRef; r += 4) {
      const o0 = r * d;
      const o1 = o0 + d;
      const o2 = o1 + d;
      const o3 = o2 + d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < d; j++) {
        const v = query[qo + j];
        s0 += v * ref[o0 + j];
        s1 += v * ref[o1 + j];
        s2 += v * ref[o2 + j];
        s3 += v * ref[o3 + j];
      }
      consider(s0);
      consider(s1);
      consider(s2);
      consider(s3);
    }
    for (; r < nRef; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += query[qo + j] * ref[r * d + j];
      consider(s);
    }
    const kth = top[Math.min(k, nRef) - 1];
    out[q] = Math.sqrt(Math.max(0, 2 - 2 * kth));
  }
  return out;
}

detectorRegistry.register('knn', (p) => {
  const k = p.k ?? 10;
  let ref: Float32Array = new Float32Array(0);
  let n = 0;
  let d = 0;
  return {
    name: 'knn',
    fit(train) {
      d = train.d;
      // A seeded subsample bounds memory and query time on very large training sets.
      const max = p.maxReference ?? 50_000;
      const idx =
        train.n > max
          ? shuffled(
              Array.from({ length: train.n }, (_, i) => i),
              createRng('knn-subsample'),
            ).slice(0, max)
          : Array.from({ length: train.n }, (_, i) => i);
      n = idx.length;
      const sub = new Float32Array(n * d);
      idx.forEach((i, r) => sub.set(train.features.subarray(i * d, (i + 1) * d), r * d));
      ref = l2normalise(sub, n, d);
    },
    score(x) {
      return kthNeighbourDistance(ref, n, l2normalise(x.features, x.n, x.d), x.n, d, Math.min(k, n));
    },
    state: () => ({ json: { k, n, d }, arrays: { reference: ref } }),
    load(json, arrays) {
      n = json.n as number;
      d = json.d as number;
      ref = arrays.reference;
    },
  };
});

/**
 * A multi-head uncertainty model in the spirit of Linmans et al. (MIDL 2020): M softmax heads on the
 * frozen features, each trained on its own bootstrap sample of the in-distribution tiles from its own
 * initialisation, so they agree where the training data was and disagree elsewhere. Score: the mutual
 * information between prediction and head (entropy of the mean minus the mean entropy).
 */
detectorRegistry.register('multihead', (p) => {
  const heads = Math.max(2, Math.round(p.heads ?? 5));
  const epochs = Math.round(p.epochs ?? 30);
  let d = 0;
  let k = 0;
  let weights: Float64Array[] = []; // each (d + 1) x k
  let mean: Float64Array = new Float64Array(0);
  let scale: Float64Array = new Float64Array(0);
  const probs = (w: Float64Array, x: Float32Array, i: number, out: Float64Array) => {
    let m = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = w[d * k + c];
      for (let j = 0; j < d; j++) z += ((x[i * d + j] - mean[j]) / scale[j]) * w[j * k + c];
      out[c] = z;
      m = Math.max(m, z);
    }
    let s = 0;
    for (let c = 0; c < k; c++) s += out[c] = Math.exp(out[c] - m);
    for (let c = 0; c < k; c++) out[c] /= s;
  };
  return {
    name: 'multihead',
    fit(train) {
      if (!train.labels) throw new ConfigError('multihead needs class labels of the training tiles');
      d = train.d;
      k = train.k;
      mean = meanRows(train.features, train.n, d);
      scale = new Float64Array(d);
      for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) scale[j] += (train.features[i * d + j] - mean[j]) ** 2;
      for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j] / Math.max(1, train.n)) || 1;
      const rng = createRng('multihead');
      weights = [];
      const p0 = new Float64Array(k);
      for (let h = 0; h < heads; h++) {
        const r = rng.fork(h);
        const w = Float64Array.from({ length: (d + 1) * k }, () => r.normal() * 0.5);
        const sample = Array.from({ length: train.n }, () => r.int(train.n));
        const lr = 0.1;
        for (let e = 0; e < epochs; e++) {
          const grad = new Float64Array(w.length);
          for (const i of sample) {
            probs(w, train.features, i, p0);
            for (let c = 0; c < k; c++) {
              const g = p0[c] - (train.labels[i] === c ? 1 : 0);
              for (let j = 0; j < d; j++) grad[j * k + c] += g * ((train.features[i * d + j] - mean[j]) / scale[j]);
              grad[d * k + c] += g;
            }
          }
          for (let t = 0; t < w.length; t++) w[t] -= (lr * grad[t]) / sample.length + lr * 1e-4 * w[t];
        }
        weights.push(w);
      }
    },
    score(x) {
      const out = new Float64Array(x.n);
      const pm = new Float64Array(k);
      const ph = new Float64Array(k);
      const H = (p: Float64Array) => -p.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
      for (let i = 0; i < x.n; i++) {
        pm.fill(0);
        let meanEntropy = 0;
        for (const w of weights) {
          probs(w, x.features, i, ph);
          meanEntropy += H(ph) / weights.length;
          for (let c = 0; c < k; c++) pm[c] += ph[c] / weights.length;
        }
        out[i] = H(pm) - meanEntropy;
      }
      return out;
    },
    state: () => ({
      json: { d, k, heads },
      arrays: {
        weights: Float32Array.from(weights.flatMap((w) => Array.from(w))),
        mean: Float32Array.from(mean),
        scale: Float32Array.from(scale),
      },
    }),
    load(json, arrays) {
      d = json.d as number;
      k = json.k as number;
      const h = json.heads as number;
      const size = (d + 1) * k;
      weights = Array.from({ length: h }, (_, i) => Float64Array.from(arrays.weights.subarray(i * size, (i + 1) * size)));
      mean = Float64Array.from(arrays.mean);
      scale = Float64Array.from(arrays.scale);
    },
  };
});

/** The first is the primary detector that `gradelab predict` reports (energy: no fitting, robust in OpenOOD's benchmark). */
export const DEFAULT_DETECTORS = [
  'energy',
  'msp',
  'max-logit',
  'mahalanobis',
  'rmds',
  'mahalanobis++',
  'knn',
  'vim',
  'ash',
  'scale',
  'multihead',
];

export function createDetector(name: string, params: Record<string, number> = {}): OodDetector {
  return detectorRegistry.get(name)(params);
}
