import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { auprTrapezoid, auroc, rocCurve } from '../metrics/index.ts';

/**
 * OOD metrics as OpenOOD computes them, with OOD as the positive class and "higher score = more OOD":
 * AUROC; FPR at 95% TPR (the share of in-distribution cases flagged when 95% of OOD cases are caught);
 * AUPR-In (in-distribution positive, score negated) and AUPR-Out (OOD positive), both trapezoidal areas
 * under scikit-learn's precision-recall curve as OpenOOD computes them (not average precision).
 */
export function fprAtTpr(isOod: ArrayLike<number>, scores: ArrayLike<number>, tpr = 0.95): number {
  const roc = rocCurve(isOod, scores);
  const p = roc.find((pt) => pt.tpr >= tpr - 1e-12);
  return p ? p.fpr : 1;
}

export interface OodMetrics {
  n: number;
  nOod: number;
  auroc: Estimate;
  fpr95: Estimate;
  aupr_in: Estimate;
  aupr_out: Estimate;
}

export function oodMetrics(
  isOod: Int32Array,
  scores: Float64Array,
  patients: string[],
  options: { resamples: number; seed: number | string },
): OodMetrics {
  const pick = <T extends Int32Array | Float64Array>(a: T, idx: Int32Array) => {
    const out = new (a.constructor as new (n: number) => T)(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = a[idx[i]];
    return out;
  };
  const neg = Float64Array.from(scores, (s) => -s);
  const inLabels = Int32Array.from(isOod, (v) => 1 - v);
  const boot = (f: (idx: Int32Array) => number, key: string) =>
    bootstrapByPatient(patients, f, { resamples: options.resamples, seed: `${options.seed}/${key}` });
  return {
    n: isOod.length,
    nOod: isOod.reduce((a, b) => a + b, 0),
    auroc: boot((idx) => auroc(pick(isOod, idx), pick(scores, idx)), 'auroc'),
    fpr95: boot((idx) => fprAtTpr(pick(isOod, idx), pick(scores, idx)), 'fpr95'),
    aupr_in: boot((idx) => auprTrapezoid(pick(inLabels, idx), pick(neg, idx)), 'aupr-in'),
    aupr_out: boot((idx) => auprTrapezoid(pick(isOod, idx), pick(scores, idx)), 'aupr-out'),
  };
}
