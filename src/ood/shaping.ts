import { detectorRegistry, type FeatureSet, type OodDetector } from './detectors.ts';
import { recoverLinearHead } from './linearHead.ts';
import { logSumExp } from './linalg.ts';

/**
 * The indices of a row's k largest values (ties: the earlier index first), as torch.topk picks them
 * for distinct values.
 */
function topK(row: Float32Array, k: number): number[] {
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
}

/**
 * Activation shaping of penultimate features, then energy of the logits the model's own linear head
 * makes of them (W and b recovered exactly from training features and logits), as OpenOOD v1.5's
 * networks do it for CNN features (non-negative, after a ReLU):
 * - `ash` (ASH-B, Djurisic et al. 2023): keep the top (100 - p)% activations of each tile, set them to
 *   the tile's activation sum divided by their count, zero the rest (p = 90 by default);
 * - `scale` (Xu et al. 2024): keep every activation and multiply by exp(sum / sum of the top
 *   (100 - p)%) (p = 85 by default).
 * Score = minus the energy (logsumexp of the shaped logits): higher = more out of distribution.
 */
function shapingDetector(name: 'ash' | 'scale', percentile: number): OodDetector {
  let w: Float64Array = new Float64Array(0);
  let b: Float64Array = new Float64Array(0);
  let d = 0;
  let k = 0;
  const shape = (x: FeatureSet, i: number): Float32Array => {
    const row = x.features.slice(i * d, (i + 1) * d);
    const keep = d - Math.round((d * percentile) / 100);
    const top = topK(row, keep);
    const total = row.reduce((s, v) => s + v, 0);
    if (name === 'ash') {
      const out = new Float32Array(d);
      for (const j of top) out[j] = total / keep;
      return out;
    }
    const kept = top.reduce((s, j) => s + row[j], 0);
    const factor = Math.exp(total / kept);
    return row.map((v) => v * factor);
  };
  return {
    name,
    fit(train) {
      d = train.d;
      k = train.k;
      ({ w, b } = recoverLinearHead(train));
    },
    score(x) {
      const logits = new Float64Array(k);
      return Float64Array.from({ length: x.n }, (_, i) => {
        const a = shape(x, i);
        for (let c = 0; c < k; c++) {
          let s = b[c];
          for (let j = 0; j < d; j++) s += w[c * d + j] * a[j];
          logits[c] = s;
        }
        return -logSumExp(logits, 0, k);
      });
    },
    state: () => ({ json: { d, k, percentile }, arrays: { w: Float32Array.from(w), b: Float32Array.from(b) } }),
    load(json, arrays) {
      d = json.d as number;
      k = json.k as number;
      w = Float64Array.from(arrays.w);
      b = Float64Array.from(arrays.b);
    },
  };
}

detectorRegistry.register('ash', (p) => shapingDetector('ash', p.percentile ?? 90));
detectorRegistry.register('scale', (p) => shapingDetector('scale', p.percentile ?? 85));
