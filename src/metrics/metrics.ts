/**
 * Grading metrics on integer labels 0..K-1 and probability rows. Each is a pure function of its
 * arrays, so the bootstrap can recompute it on any resample.
 */
export function confusionMatrix(y: ArrayLike<number>, pred: ArrayLike<number>, k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < y.length; i++) m[y[i]][pred[i]]++;
  return m;
}

export type KappaWeights = 'none' | 'linear' | 'quadratic';

/**
 * Cohen's kappa with optional linear or quadratic disagreement weights (quadratic = PANDA's QWK):
 * 1 - sum(w O) / sum(w E), with E the outer product of the marginals. When both raters use the same
 * single class the expected disagreement is zero: identical labels give 1 by convention.
 */
export function cohenKappa(y: ArrayLike<number>, pred: ArrayLike<number>, k: number, weights: KappaWeights = 'none'): number {
  const n = y.length;
  if (n === 0) return NaN;
  const o = confusionMatrix(y, pred, k);
  const rows = o.map((r) => r.reduce((a, b) => a + b, 0));
  const cols = o[0].map((_, j) => o.reduce((a, r) => a + r[j], 0));
  let num = 0;
  let den = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const w =
        weights === 'none'
          ? i === j
            ? 0
            : 1
          : weights === 'linear'
            ? Math.abs(i - j) / (k - 1)
            : ((i - j) * (i - j)) / ((k - 1) * (k - 1));
      num += w * o[i][j];
      den += (w * rows[i] * cols[j]) / n;
    }
  }
  if (den === 0) return num === 0 ? 1 : NaN;
  return 1 - num / den;
}

export function quadraticWeightedKappa(y: ArrayLike<number>, pred: ArrayLike<number>, k: number): number {
  return cohenKappa(y, pred, k, 'quadratic');
}

export function accuracy(y: ArrayLike<number>, pred: ArrayLike<number>): number {
  let c = 0;
  for (let i = 0; i < y.length; i++) if (y[i] === pred[i]) c++;
  return y.length ? c / y.length : NaN;
}

/** Mean recall over the classes present in y (scikit-learn's balanced_accuracy_score). */
export function balancedAccuracy(y: ArrayLike<number>, pred: ArrayLike<number>, k: number): number {
  const m = confusionMatrix(y, pred, k);
  const recalls: number[] = [];
  for (let c = 0; c < k; c++) {
    const t = m[c].reduce((a, b) => a + b, 0);
    if (t > 0) recalls.push(m[c][c] / t);
  }
  return recalls.length ? recalls.reduce((a, b) => a + b, 0) / recalls.length : NaN;
}

export interface ClassStats {
  sensitivity: number;
  specificity: number;
  ppv: number;
  npv: number;
  support: number;
}

/** One-vs-rest sensitivity, specificity, PPV and NPV per class (NaN where a denominator is zero). */
export function perClassStats(y: ArrayLike<number>, pred: ArrayLike<number>, k: number): ClassStats[] {
  const m = confusionMatrix(y, pred, k);
  const n = y.length;
  return Array.from({ length: k }, (_, c) => {
    const tp = m[c][c];
    const fn = m[c].reduce((a, b) => a + b, 0) - tp;
    const fp = m.reduce((a, r) => a + r[c], 0) - tp;
    const tn = n - tp - fn - fp;
    const div = (a: number, b: number) => (b > 0 ? a / b : NaN);
    return { sensitivity: div(tp, tp + fn), specificity: div(tn, tn + fp), ppv: div(tp, tp + fp), npv: div(tn, tn + fn), support: tp + fn };
  });
}

/**
 * Area under the ROC curve for binary labels (1 positive) and scores: the Mann-Whitney statistic,
 * ties counted half. NaN when one class is absent.
 */
export function auroc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (labels[idx[t]] === 1) {
        pos++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** ROC points (fpr, tpr) at every distinct threshold, from (0,0) to (1,1). */
export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): { fpr: number; tpr: number; threshold: number }[] {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let P = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) P++;
  const N = labels.length - P;
  const pts = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < idx.length; i++) {
    if (labels[idx[i]] === 1) tp++;
    else fp++;
    if (i === idx.length - 1 || scores[idx[i + 1]] !== scores[idx[i]])
      pts.push({ fpr: N ? fp / N : 0, tpr: P ? tp / P : 0, threshold: scores[idx[i]] });
  }
  return pts;
}

/** Precision-recall points at every distinct threshold. */
export function prCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): { recall: number; precision: number; threshold: number }[] {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let P = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) P++;
  const pts: { recall: number; precision: number; threshold: number }[] = [];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < idx.length; i++) {
    if (labels[idx[i]] === 1) tp++;
    else fp++;
    if (i === idx.length - 1 || scores[idx[i + 1]] !== scores[idx[i]])
      pts.push({ recall: P ? tp / P : 0, precision: tp / (tp + fp), threshold: scores[idx[i]] });
  }
  return pts;
}

/** Average precision as scikit-learn computes it: sum over thresholds of (R_n - R_{n-1}) P_n. */
export function averagePrecision(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const pts = prCurve(labels, scores);
  if (!pts.length || pts[pts.length - 1].recall === 0) return NaN;
  let ap = 0;
  let prev = 0;
  for (const p of pts) {
    ap += (p.recall - prev) * p.precision;
    prev = p.recall;
  }
  return ap;
}

/**
 * Area under the precision-recall curve by the trapezoid rule, as OpenOOD reports AUPR-In and AUPR-Out
 * (scikit-learn's precision_recall_curve, then auc): the curve runs from (recall 0, precision 1) through
 * each distinct threshold to the first reaching full recall. Differs from average precision, a step sum.
 */
export function auprTrapezoid(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const pts = prCurve(labels, scores);
  if (!pts.length || pts[pts.length - 1].recall === 0) return NaN;
  const full = pts.findIndex((p) => p.recall >= 1);
  let area = 0;
  let prev = { recall: 0, precision: 1 };
  for (const p of pts.slice(0, full + 1)) {
    area += ((p.recall - prev.recall) * (p.precision + prev.precision)) / 2;
    prev = p;
  }
  return area;
}

/** Multi-class Brier score: mean over cases of the squared distance between probabilities and the one-hot label. */
export function brierScore(y: ArrayLike<number>, probs: Float32Array | Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) for (let c = 0; c < k; c++) s += (probs[i * k + c] - (y[i] === c ? 1 : 0)) ** 2;
  return y.length ? s / y.length : NaN;
}

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  confidence: number;
  accuracy: number;
}

/** Top-label reliability bins (equal width) and the expected calibration error. */
export function calibration(
  y: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  k: number,
  bins = 15,
): { ece: number; bins: ReliabilityBin[] } {
  const out: ReliabilityBin[] = Array.from({ length: bins }, (_, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: 0,
    confidence: 0,
    accuracy: 0,
  }));
  for (let i = 0; i < y.length; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    const conf = probs[i * k + best];
    const b = Math.min(bins - 1, Math.floor(conf * bins));
    out[b].count++;
    out[b].confidence += conf;
    out[b].accuracy += y[i] === best ? 1 : 0;
  }
  let ece = 0;
  for (const b of out) {
    if (!b.count) continue;
    ece += (b.count / y.length) * Math.abs(b.accuracy / b.count - b.confidence / b.count);
    b.confidence /= b.count;
    b.accuracy /= b.count;
  }
  return { ece: y.length ? ece : NaN, bins: out };
}
