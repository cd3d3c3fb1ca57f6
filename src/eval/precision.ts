import type { Task } from '../core/index.ts';
import { cohenKappa } from '../metrics/index.ts';
import { fleissKappa } from './agreement.ts';
import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { clinicalCutoffs } from './evaluate.ts';

/**
 * One slide graded under several acquisitions: rescans on one scanner (repeatability) or one scan per
 * scanner (reproducibility). grades[c] is the class index under acquisition c.
 */
export interface RescannedSlide {
  slideId: string;
  patientId: string;
  grades: number[];
}

export interface PrecisionReport {
  kind: 'repeatability' | 'reproducibility';
  acquisitions: string[];
  slides: number;
  patients: number;
  /** Share of slides graded identically under every acquisition. */
  identical: Estimate;
  /** Fleiss' kappa over acquisitions (as raters), and the mean pairwise Cohen's kappa (quadratic for ordinal grades). */
  fleiss: Estimate;
  pairwiseKappa: Estimate;
  /** Mean over acquisition pairs of the mean absolute grade difference. */
  meanAbsoluteDifference: Estimate;
  /** Per clinical cut-off: share of slides on both sides of it under different acquisitions. */
  flips: { cutoff: string; rate: Estimate }[];
  /** Per acquisition pair: share identical and kappa (point values). */
  pairs: { a: string; b: string; identical: number; kappa: number }[];
}

function pairsOf(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) out.push([a, b]);
  return out;
}

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

/** The agreement statistics of slides `idx` (rows may repeat: bootstrap resamples). */
function statistics(slides: readonly RescannedSlide[], idx: ArrayLike<number>, k: number, weights: 'quadratic' | 'none') {
  const rows = Array.from(idx, (i) => slides[i]);
  const m = rows[0].grades.length;
  const column = (c: number) => rows.map((r) => r.grades[c]);
  const pairs = pairsOf(m);
  return {
    identical: rows.filter((r) => r.grades.every((g) => g === r.grades[0])).length / rows.length,
    fleiss: fleissKappa(
      rows.map((r) => {
        const counts = new Array<number>(k).fill(0);
        for (const g of r.grades) counts[g]++;
        return counts;
      }),
    ),
    // Two acquisitions that grade every slide alike agree perfectly, even where kappa's chance term is 0/0.
    pairwiseKappa: mean(
      pairs.map(([a, b]) => (column(a).every((g, i) => g === column(b)[i]) ? 1 : cohenKappa(column(a), column(b), k, weights))),
    ),
    meanAbsoluteDifference: mean(pairs.map(([a, b]) => mean(rows.map((r) => Math.abs(r.grades[a] - r.grades[b]))))),
    flipRate: (threshold: number) => rows.filter((r) => new Set(r.grades.map((g) => g >= threshold)).size > 1).length / rows.length,
  };
}

/**
 * Precision of a model's slide grades under re-acquisition (21 CFR 864.3750's analytical precision):
 * share graded identically, Fleiss' kappa, mean pairwise kappa (quadratic for ISUP), mean absolute grade
 * difference and the flip rate at each clinical cut-off, each with a patient-bootstrap 95% CI.
 */
export function precisionReport(
  slides: readonly RescannedSlide[],
  acquisitions: string[],
  options: { kind: PrecisionReport['kind']; task: Task; k: number; resamples: number; seed: number },
): PrecisionReport {
  const { k, task } = options;
  const weights = task === 'prostate' ? 'quadratic' : 'none';
  const patients = slides.map((s) => s.patientId);
  const boot = (f: (s: ReturnType<typeof statistics>) => number, name: string) =>
    bootstrapByPatient(patients, (idx) => f(statistics(slides, idx, k, weights)), {
      resamples: options.resamples,
      seed: `${options.seed}-precision-${name}`,
    });
  return {
    kind: options.kind,
    acquisitions,
    slides: slides.length,
    patients: new Set(patients).size,
    identical: boot((s) => s.identical, 'identical'),
    fleiss: boot((s) => s.fleiss, 'fleiss'),
    pairwiseKappa: boot((s) => s.pairwiseKappa, 'kappa'),
    meanAbsoluteDifference: boot((s) => s.meanAbsoluteDifference, 'mad'),
    flips: clinicalCutoffs(task, k).map((c) => ({ cutoff: c.name, rate: boot((s) => s.flipRate(c.threshold), `flip-${c.threshold}`) })),
    pairs: pairsOf(acquisitions.length).map(([a, b]) => {
      const ga = slides.map((s) => s.grades[a]);
      const gb = slides.map((s) => s.grades[b]);
      const same = ga.every((g, i) => g === gb[i]);
      return {
        a: acquisitions[a],
        b: acquisitions[b],
        identical: ga.filter((g, i) => g === gb[i]).length / slides.length,
        kappa: same ? 1 : cohenKappa(ga, gb, k, weights),
      };
    }),
  };
}
