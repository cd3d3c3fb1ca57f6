import { patientResamples } from './bootstrap.ts';

/**
 * Confidence intervals that stay honest at the boundary, where the percentile bootstrap collapses
 * (20 of 20 correct resamples to 20 of 20 every time and prints "1.000 (1.000-1.000)"):
 * - proportions (accuracy, sensitivity, specificity, PPV, NPV): Wilson's score interval;
 * - AUROC: Newcombe's score interval for the Mann-Whitney statistic (2006, method 5);
 * both at an effective sample size: the count divided by the design effect of patients with several
 * slides (Kish), estimated as the patient-bootstrap variance over the simple-random-sampling variance
 * (never below 1). Where the estimate sits at 0 or 1 the bootstrap variance is 0 and the design effect
 * is taken as 1: the interval then rests on the count alone, as an exact interval would.
 */

/** The 97.5th percentile of the standard normal: 95% two-sided intervals. */
export const Z95 = 1.959963984540054;

/** Wilson's score interval for `p` observed on `n` (possibly fractional, an effective size) trials. */
export function wilsonInterval(p: number, n: number, z = Z95): [number, number] {
  if (!(n > 0) || !Number.isFinite(p)) return [NaN, NaN];
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * The variance of the Mann-Whitney AUC estimate at AUC `theta` with m positives and n negatives, as
 * Newcombe (2006) writes Hanley and McNeil's with both group sizes replaced by N* = (m + n) / 2:
 * theta (1 - theta) / (m n) * [(2 N* - 1) - (3 N* - 3) / ((2 - theta)(1 + theta))].
 */
export function newcombeAucVariance(theta: number, m: number, n: number): number {
  const nStar = (m + n) / 2;
  return ((theta * (1 - theta)) / (m * n)) * (2 * nStar - 1 - (3 * nStar - 3) / ((2 - theta) * (1 + theta)));
}

/**
 * Newcombe's score interval for an AUC (method 5): the thetas whose own variance puts the estimate
 * within z standard errors, found by bisection on each side. It does not collapse at 0 or 1.
 */
export function newcombeAucInterval(auc: number, m: number, n: number, z = Z95): [number, number] {
  if (!Number.isFinite(auc) || !(m > 0) || !(n > 0)) return [NaN, NaN];
  // Inside the interval where (theta - auc)^2 <= z^2 V(theta); V is 0 at 0 and 1, so both ends are roots.
  const outside = (theta: number) => (theta - auc) ** 2 - z * z * newcombeAucVariance(theta, m, n);
  const root = (inside: number, edge: number) => {
    if (outside(edge) <= 0) return edge;
    let a = inside;
    let b = edge;
    for (let i = 0; i < 100; i++) {
      const mid = (a + b) / 2;
      if (outside(mid) <= 0) a = mid;
      else b = mid;
    }
    return (a + b) / 2;
  };
  return [root(auc, 0), root(auc, 1)];
}

/** Variance of the finite values among a statistic's patient-bootstrap resamples. */
function bootstrapVariance(
  patients: readonly string[],
  statistic: (rows: Int32Array) => number,
  options: { resamples: number; seed: number | string },
): number {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const rows of patientResamples(patients, options)) {
    const s = statistic(rows);
    if (!Number.isFinite(s)) continue;
    n++;
    const d = s - mean;
    mean += d / n;
    m2 += d * (s - mean);
  }
  return n > 1 ? m2 / (n - 1) : NaN;
}

/** Kish's design effect: clustered variance over the variance of independent units, at least 1. */
function designEffect(clustered: number, independent: number): number {
  return Number.isFinite(clustered) && independent > 0 ? Math.max(1, clustered / independent) : 1;
}

export interface ScoreEstimate {
  value: number;
  ci95: [number, number];
  method: 'wilson' | 'newcombe-score';
  /** Units (slides) behind the estimate, and the effective number after the patient design effect. */
  n: number;
  effectiveN: number;
}

/**
 * A proportion with Wilson's interval: `success[i]` is 1 or 0 for each unit of the denominator (the
 * positives, for sensitivity), `patients[i]` its patient.
 */
export function proportionEstimate(
  success: ArrayLike<number>,
  patients: readonly string[],
  options: { resamples: number; seed: number | string },
): ScoreEstimate {
  const n = success.length;
  let hits = 0;
  for (let i = 0; i < n; i++) hits += success[i];
  const p = n ? hits / n : NaN;
  if (!n) return { value: NaN, ci95: [NaN, NaN], method: 'wilson', n: 0, effectiveN: 0 };
  const boot = bootstrapVariance(
    patients,
    (rows) => {
      let s = 0;
      for (const i of rows) s += success[i];
      return rows.length ? s / rows.length : NaN;
    },
    options,
  );
  const effectiveN = n / designEffect(boot, (p * (1 - p)) / n);
  return { value: p, ci95: wilsonInterval(p, effectiveN), method: 'wilson', n, effectiveN };
}

/** An AUROC with Newcombe's score interval; `auc(rows)` recomputes it on a resample's rows. */
export function aucEstimate(
  labels: ArrayLike<number>,
  patients: readonly string[],
  auc: (rows: Int32Array) => number,
  options: { resamples: number; seed: number | string },
): ScoreEstimate {
  let m = 0;
  for (let i = 0; i < labels.length; i++) m += labels[i] === 1 ? 1 : 0;
  const n = labels.length - m;
  const value = auc(Int32Array.from({ length: labels.length }, (_, i) => i));
  if (!m || !n || !Number.isFinite(value))
    return { value: NaN, ci95: [NaN, NaN], method: 'newcombe-score', n: labels.length, effectiveN: 0 };
  const deff = designEffect(bootstrapVariance(patients, auc, options), newcombeAucVariance(value, m, n));
  return {
    value,
    ci95: newcombeAucInterval(value, m / deff, n / deff),
    method: 'newcombe-score',
    n: labels.length,
    effectiveN: labels.length / deff,
  };
}
