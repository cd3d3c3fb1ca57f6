import { PATTERN_ISUP } from './patternGrade.ts';

/**
 * Class probabilities from a head's raw outputs, in plain arithmetic (the ONNX engine's half of what
 * train/heads.ts does with tensors): softmax rows; the breast multitask head's first three of its 4 x 3
 * outputs (the grade); CORAL's P(y > k) = sigmoid(logit_k), made into P(y = k) by consecutive differences,
 * clipped at zero and renormalised when the thresholds cross; the pattern head's softmax over benign and
 * Gleason 3/4/5, written into the ISUP classes of PATTERN_ISUP (the others stay 0). A calibration `temperature` divides every
 * logit first (temperature scaling; for CORAL the same scale on each threshold's logit).
 */
export function headProbabilities(logits: Float32Array, n: number, head: HeadKind, k: number, temperature = 1): Float32Array {
  const width = logits.length / n;
  const out = new Float32Array(n * k);
  const scaled = temperature === 1 ? logits : logits.map((v) => v / temperature);
  for (let i = 0; i < n; i++) {
    const row = scaled.subarray(i * width, (i + 1) * width);
    const p = out.subarray(i * k, (i + 1) * k);
    if (head === 'patterns') {
      const patterns = new Float32Array(PATTERN_ISUP.length);
      softmaxInto(row.subarray(0, PATTERN_ISUP.length), patterns);
      PATTERN_ISUP.forEach((c, i) => (p[c] = patterns[i]));
    } else if (head === 'ordinal') {
      let sum = 0;
      for (let c = 0; c < k; c++) {
        const upper = c === 0 ? 1 : sigmoid(row[c - 1]);
        const lower = c === k - 1 ? 0 : sigmoid(row[c]);
        p[c] = Math.max(0, upper - lower);
        sum += p[c];
      }
      const s = Math.max(sum, 1e-7);
      for (let c = 0; c < k; c++) p[c] /= s;
    } else {
      softmaxInto(row.subarray(0, k), p);
    }
  }
  return out;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function softmaxInto(z: Float32Array, out: Float32Array): void {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (let c = 0; c < z.length; c++) {
    out[c] = Math.exp(z[c] - max);
    sum += out[c];
  }
  for (let c = 0; c < z.length; c++) out[c] /= sum;
}

export type HeadKind = 'softmax' | 'ordinal' | 'multitask' | 'patterns';

/**
 * The predicted class from class probabilities. Softmax and multitask heads: the most probable class.
 * Ordinal (CORAL, Cao et al. 2020): the number of thresholds k with P(y > k) > 0.5, where P(y > k) is
 * the probability above k, not the argmax of P(y = k); for CORAL's own outputs the sums of the
 * consecutive differences give back sigmoid(logit_k) exactly, and pooled (averaged) probabilities are
 * ranked the same way. Pattern head: a tile's most probable pattern, as its ISUP class (PATTERN_ISUP); a
 * slide's grade comes from its pattern areas instead (patternGradeProbabilities).
 */
export function predictedClass(probs: ArrayLike<number>, head: HeadKind): number {
  const k = probs.length;
  if (head === 'ordinal') {
    let above = 0;
    let rank = 0;
    for (let c = k - 1; c >= 1; c--) {
      above += probs[c];
      if (above > 0.5) rank++;
    }
    return rank;
  }
  let best = 0;
  for (let c = 1; c < k; c++) if (probs[c] > probs[best]) best = c;
  return best;
}
