import { accuracy, quadraticWeightedKappa } from '../metrics/index.ts';
import { aurc } from './selective.ts';

export interface CoveragePoint {
  /** Share of cases the model keeps (the rest are deferred to a pathologist). */
  coverage: number;
  kept: number;
  qwk: number;
  accuracy: number;
  /** Risk = 1 - accuracy on the kept cases. */
  risk: number;
  /** Sensitivity at the clinical cut-off on the kept cases (null without a positive case kept). */
  sensitivity?: number | null;
}

/**
 * Risk-coverage analysis: sort cases by uncertainty, defer the least certain to a pathologist, and
 * measure the model on the rest, at coverages 100%, 95%, ... down to `minCoverage`. AURC is over every
 * coverage i/n (selective.ts), not only the curve's points (lower is better).
 */
export function riskCoverage(
  y: ArrayLike<number>,
  pred: ArrayLike<number>,
  uncertainty: ArrayLike<number>,
  k: number,
  step = 0.05,
  minCoverage = 0.1,
  cutoff?: number,
): { curve: CoveragePoint[]; aurc: number } {
  const n = y.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => uncertainty[a] - uncertainty[b] || a - b);
  const curve: CoveragePoint[] = [];
  for (let c = 1; c >= minCoverage - 1e-9; c -= step) {
    const kept = Math.max(1, Math.round(c * n));
    const idx = order.slice(0, kept);
    const yy = idx.map((i) => y[i]);
    const pp = idx.map((i) => pred[i]);
    const acc = accuracy(yy, pp);
    const positives = cutoff === undefined ? [] : idx.filter((i) => y[i] >= cutoff);
    curve.push({
      coverage: Math.round(c * 100) / 100,
      kept,
      qwk: quadraticWeightedKappa(yy, pp, k),
      accuracy: acc,
      risk: 1 - acc,
      ...(cutoff === undefined
        ? {}
        : { sensitivity: positives.length ? positives.filter((i) => pred[i] >= cutoff).length / positives.length : null }),
    });
  }
  return {
    curve,
    aurc: aurc(
      Array.from(y, (v, i) => (v === pred[i] ? 0 : 1)),
      uncertainty,
    ),
  };
}
