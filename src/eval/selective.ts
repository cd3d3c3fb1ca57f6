import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import type { CoveragePoint } from './referral.ts';

/**
 * Area under the risk-coverage curve (Geifman, Uziel & El-Yaniv 2019): cases sorted from most to least
 * certain (`uncertainty` ascending; ties keep input order), risk at coverage i/n the error rate of the i
 * most certain, averaged over i = 1..n. Lower is better; an ordering that knows the errors (oracle) sets
 * the floor, and excess AURC (E-AURC) is the distance from it.
 */
export function aurc(errors: ArrayLike<number>, uncertainty: ArrayLike<number>): number {
  const n = errors.length;
  if (!n) return Number.NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => uncertainty[a] - uncertainty[b] || a - b);
  let wrong = 0;
  let area = 0;
  order.forEach((i, at) => {
    wrong += errors[i];
    area += wrong / (at + 1);
  });
  return area / n;
}

/** The AURC of the ordering that defers every error first: what a perfect uncertainty score would give. */
export function oracleAurc(errors: ArrayLike<number>): number {
  return aurc(errors, errors);
}

/** Uncertainty scores of a slide from its class probabilities (higher: less certain). */
export const UNCERTAINTY_SCORES = {
  'max-probability': (p: readonly number[]) => 1 - Math.max(...p),
  entropy: (p: readonly number[]) => -p.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0),
  'expected-grade-variance': (p: readonly number[]) => {
    const mean = p.reduce((s, v, c) => s + v * c, 0);
    return p.reduce((s, v, c) => s + v * (c - mean) ** 2, 0);
  },
} as const;

export interface SelectiveScore {
  score: string;
  aurc: Estimate;
  /** AURC minus the oracle's on the same resample. */
  eaurc: Estimate;
}

export interface SelectiveReport {
  /** Error rate at full coverage and the oracle's AURC for it. */
  risk: number;
  oracleAurc: number;
  scores: SelectiveScore[];
  /** The largest coverage at which the kept cases reach each target QWK (by the referral score), or null. */
  coverageAtQwk: { target: number; coverage: number | null }[];
  /** The same for sensitivity at the main clinical cut-off (ISUP >= 2; Nottingham grade 3). */
  coverageAtSensitivity?: { cutoff: string; target: number; coverage: number | null }[];
}

/** The sensitivity targets a referral policy is read against, at the main clinical cut-off. */
export const SENSITIVITY_TARGETS = [0.9, 0.95];

/** The QWK targets a referral policy is read against. */
export const QWK_TARGETS = [0.8, 0.9, 0.95];

/**
 * Selective prediction: AURC and E-AURC with patient-bootstrap CIs for each uncertainty score (the
 * probability-based ones, and the OOD score and an uncertainty column where the file has them), and the
 * coverage at which the referral curve reaches each target QWK.
 */
export function selectivePrediction(
  rows: { y: number; pred: number; probs: readonly number[]; patientId: string; oodScore?: number; uncertainty?: number }[],
  referral: CoveragePoint[],
  options: { resamples: number; seed: number; cutoff?: string },
): SelectiveReport {
  const errors = rows.map((r): number => (r.y === r.pred ? 0 : 1));
  const scores: [string, number[]][] = Object.entries(UNCERTAINTY_SCORES).map(([name, f]) => [name, rows.map((r) => f(r.probs))]);
  if (rows.every((r) => r.oodScore !== undefined && Number.isFinite(r.oodScore))) scores.push(['ood-score', rows.map((r) => r.oodScore!)]);
  if (rows.every((r) => r.uncertainty !== undefined)) scores.push(['uncertainty column', rows.map((r) => r.uncertainty!)]);
  const patients = rows.map((r) => r.patientId);
  const pick = (xs: number[], idx: Int32Array) => Array.from(idx, (i) => xs[i]);
  return {
    risk: errors.reduce((a, b) => a + b, 0) / Math.max(1, errors.length),
    oracleAurc: oracleAurc(errors),
    scores: scores.map(([score, u]) => ({
      score,
      aurc: bootstrapByPatient(patients, (idx) => aurc(pick(errors, idx), pick(u, idx)), {
        ...options,
        seed: `${options.seed}-aurc-${score}`,
      }),
      eaurc: bootstrapByPatient(patients, (idx) => aurc(pick(errors, idx), pick(u, idx)) - oracleAurc(pick(errors, idx)), {
        ...options,
        seed: `${options.seed}-eaurc-${score}`,
      }),
    })),
    coverageAtQwk: QWK_TARGETS.map((target) => ({
      target,
      coverage: referral.find((p) => Number.isFinite(p.qwk) && p.qwk >= target)?.coverage ?? null,
    })),
    ...(options.cutoff
      ? {
          coverageAtSensitivity: SENSITIVITY_TARGETS.map((target) => ({
            cutoff: options.cutoff!,
            target,
            coverage: referral.find((p) => typeof p.sensitivity === 'number' && p.sensitivity >= target)?.coverage ?? null,
          })),
        }
      : {}),
  };
}
