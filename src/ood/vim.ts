import { InputError, symmetricEigen } from '../core/index.ts';
import { detectorRegistry, type FeatureSet } from './detectors.ts';
import { recoverLinearHead, vimOrigin } from './linearHead.ts';
import { logSumExp } from './linalg.ts';

/**
 * ViM (Wang et al. 2022) as the official code computes it: the origin u = -pinv(W) b of the softmax
 * head (the point whose logits are all zero; W and b recovered from the training features and logits),
 * the covariance of training features about u, its principal subspace of dimension D (d / 2 by default),
 * and the score alpha ||residual of x - u outside that subspace|| - energy, alpha matching the mean
 * residual to the mean max logit on the training features. Higher = more OOD.
 */
detectorRegistry.register('vim', (p) => {
  let d = 0;
  let dim = 0;
  let origin: Float64Array = new Float64Array(0);
  let nullSpace: Float64Array = new Float64Array(0); // d x (d - dim), columns
  let alpha = 1;
  const residual = (x: FeatureSet, i: number, tmp: Float64Array) => {
    for (let j = 0; j < d; j++) tmp[j] = x.features[i * d + j] - origin[j];
    const rest = d - dim;
    let sq = 0;
    for (let c = 0; c < rest; c++) {
      let proj = 0;
      for (let j = 0; j < d; j++) proj += tmp[j] * nullSpace[j * rest + c];
      sq += proj * proj;
    }
    return Math.sqrt(sq);
  };
  return {
    name: 'vim',
    fit(train) {
      d = train.d;
      dim = Math.max(1, Math.min(d - 1, Math.round(p.dim ?? d / 2)));
      const { w, b } = recoverLinearHead(train);
      origin = vimOrigin(w, b, train.k, d);
      const cov = new Float64Array(d * d);
      for (let i = 0; i < train.n; i++) {
        for (let a = 0; a < d; a++) {
          const da = train.features[i * d + a] - origin[a];
          for (let c = a; c < d; c++) cov[a * d + c] += da * (train.features[i * d + c] - origin[c]);
        }
      }
      for (let a = 0; a < d; a++) for (let c = 0; c < a; c++) cov[a * d + c] = cov[c * d + a];
      const { vectors } = symmetricEigen(cov, d);
      const rest = d - dim;
      nullSpace = new Float64Array(d * rest);
      for (let j = 0; j < d; j++) for (let c = 0; c < rest; c++) nullSpace[j * rest + c] = vectors[j * d + dim + c];
      const tmp = new Float64Array(d);
      let res = 0;
      let maxLogit = 0;
      for (let i = 0; i < train.n; i++) {
        res += residual(train, i, tmp);
        maxLogit += Math.max(...train.logits.subarray(i * train.k, (i + 1) * train.k));
      }
      alpha = res > 0 ? maxLogit / res : 1;
    },
    score(x) {
      const tmp = new Float64Array(d);
      return Float64Array.from({ length: x.n }, (_, i) => alpha * residual(x, i, tmp) - logSumExp(x.logits, i * x.k, x.k));
    },
    state: () => ({ json: { d, dim, alpha }, arrays: { origin: Float32Array.from(origin), nullSpace: Float32Array.from(nullSpace) } }),
    load(json, arrays) {
      if (!arrays.origin || !arrays.nullSpace)
        throw new InputError('the stored ViM detector predates its fix (origin -pinv(W) b); refit with `gradelab ood fit`');
      d = json.d as number;
      dim = json.dim as number;
      alpha = json.alpha as number;
      origin = Float64Array.from(arrays.origin);
      nullSpace = Float64Array.from(arrays.nullSpace);
    },
  };
});
