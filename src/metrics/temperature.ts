import { calibration, type ReliabilityBin } from './metrics.ts';

/** Mean negative log-likelihood of the labels (probabilities floored at 1e-12, as scikit-learn's log_loss clips). */
export function negativeLogLikelihood(y: ArrayLike<number>, probs: ArrayLike<number>, k: number): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s -= Math.log(Math.max(probs[i * k + y[i]], 1e-12));
  return s / y.length;
}

/**
 * Top-label ECE over bins of equal count (Nixon et al. 2019's adaptive ECE): cases sorted by confidence
 * and cut into `bins` groups as equal as integer counts allow, so no bin is empty and none holds all.
 */
export function equalMassEce(
  y: ArrayLike<number>,
  probs: ArrayLike<number>,
  k: number,
  bins = 15,
): { ece: number; bins: ReliabilityBin[] } {
  const n = y.length;
  if (!n) return { ece: Number.NaN, bins: [] };
  const top = Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    return { conf: probs[i * k + best], correct: y[i] === best ? 1 : 0 };
  }).sort((a, b) => a.conf - b.conf);
  const m = Math.min(bins, n);
  const out: ReliabilityBin[] = [];
  let ece = 0;
  for (let b = 0; b < m; b++) {
    const part = top.slice(Math.floor((b * n) / m), Math.floor(((b + 1) * n) / m));
    const confidence = part.reduce((s, t) => s + t.conf, 0) / part.length;
    const accuracy = part.reduce((s, t) => s + t.correct, 0) / part.length;
    ece += (part.length / n) * Math.abs(accuracy - confidence);
    out.push({ lower: part[0].conf, upper: part[part.length - 1].conf, count: part.length, confidence, accuracy });
  }
  return { ece, bins: out };
}

/**
 * Classwise ECE (Kull et al. 2019): for each class, equal-width bins of P(class) against how often the
 * case is that class, averaged over classes; sensitive to miscalibration of every class, not the top one.
 */
export function classwiseEce(y: ArrayLike<number>, probs: ArrayLike<number>, k: number, bins = 15): number {
  let total = 0;
  for (let c = 0; c < k; c++) {
    const count = new Float64Array(bins);
    const conf = new Float64Array(bins);
    const hits = new Float64Array(bins);
    for (let i = 0; i < y.length; i++) {
      const p = probs[i * k + c];
      const b = Math.min(bins - 1, Math.floor(p * bins));
      count[b]++;
      conf[b] += p;
      hits[b] += y[i] === c ? 1 : 0;
    }
    let e = 0;
    for (let b = 0; b < bins; b++) if (count[b]) e += Math.abs(hits[b] - conf[b]) / y.length;
    total += e;
  }
  return total / k;
}

/** The calibration figures of one set of probabilities. */
export interface CalibrationFigures {
  nll: number;
  ece: number;
  eceEqualMass: number;
  classwiseEce: number;
}

export function calibrationFigures(
  y: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  k: number,
  bins = 15,
  massBins = bins,
): CalibrationFigures {
  return {
    nll: negativeLogLikelihood(y, probs, k),
    ece: calibration(y, probs, k, bins).ece,
    eceEqualMass: equalMassEce(y, probs, k, massBins).ece,
    classwiseEce: classwiseEce(y, probs, k, bins),
  };
}

/**
 * The temperature T > 0 minimising `nll(T)` (Guo et al. 2017's temperature scaling: logits / T): a grid
 * over log T from 0.05 to 20 brackets the minimum, golden-section search refines it to 1e-6 in log T.
 * The objective need not be convex in T (pooled slide probabilities are a mean of tile softmaxes), so the
 * grid comes first.
 */
export function fitTemperature(nll: (temperature: number) => number): number {
  const lo = Math.log(0.05);
  const hi = Math.log(20);
  const steps = 80;
  let best = 0;
  const grid = Array.from({ length: steps + 1 }, (_, i) => nll(Math.exp(lo + ((hi - lo) * i) / steps)));
  grid.forEach((v, i) => {
    if (v < grid[best]) best = i;
  });
  let a = lo + ((hi - lo) * Math.max(0, best - 1)) / steps;
  let b = lo + ((hi - lo) * Math.min(steps, best + 1)) / steps;
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = nll(Math.exp(c));
  let fd = nll(Math.exp(d));
  while (b - a > 1e-6) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = nll(Math.exp(c));
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = nll(Math.exp(d));
    }
  }
  return Math.exp((a + b) / 2);
}
