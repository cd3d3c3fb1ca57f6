import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { rocCurve } from '../metrics/index.ts';
import { RankedScores } from './rankedScores.ts';

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
  // Each statistic sorts its scores once; a resample is then its rows' counts (see rankedScores.ts).
  const out = new RankedScores(isOod, scores);
  const inward = new RankedScores(
    Int32Array.from(isOod, (v) => 1 - v),
    Float64Array.from(scores, (s) => -s),
  );
  const boot = (f: (idx: Int32Array) => number, key: string) =>
    bootstrapByPatient(patients, f, { resamples: options.resamples, seed: `${options.seed}/${key}` });
  return {
    n: isOod.length,
    nOod: isOod.reduce((a, b) => a + b, 0),
    auroc: boot((idx) => out.auroc(out.counts(idx)), 'auroc'),
    fpr95: boot((idx) => out.fprAtTpr(out.counts(idx)), 'fpr95'),
    aupr_in: boot((idx) => inward.auprTrapezoid(inward.counts(idx)), 'aupr-in'),
    aupr_out: boot((idx) => out.auprTrapezoid(out.counts(idx)), 'aupr-out'),
  };
}
