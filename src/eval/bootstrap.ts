import { createRng } from '../core/index.ts';
import { percentile } from '../core/index.ts';

export interface Estimate {
  value: number;
  /** Percentile bootstrap interval over patients; [NaN, NaN] when not computable. */
  ci95: [number, number];
}

/**
 * Patient-level bootstrap: resample patients with replacement (all of a patient's rows go together, so
 * correlated slides and tiles do not shrink the interval), recompute the statistic, and take the 2.5th
 * and 97.5th percentiles. Seeded; resamples where the statistic is undefined (NaN) are dropped.
 */
export function bootstrapByPatient(
  patients: readonly string[],
  statistic: (rows: Int32Array) => number,
  options: { resamples: number; seed: number | string },
): Estimate {
  const value = statistic(Int32Array.from(patients.keys()));
  const stats: number[] = [];
  for (const rows of patientResamples(patients, options)) {
    const s = statistic(rows);
    if (Number.isFinite(s)) stats.push(s);
  }
  if (stats.length < options.resamples * 0.5 || new Set(patients).size < 2) return { value, ci95: [NaN, NaN] };
  return { value, ci95: [percentile(stats, 2.5), percentile(stats, 97.5)] };
}

/** The row sets of a seeded patient bootstrap: patients drawn with replacement, each with all its rows. */
export function* patientResamples(
  patients: readonly string[],
  options: { resamples: number; seed: number | string },
): Generator<Int32Array> {
  const groups = new Map<string, number[]>();
  patients.forEach((p, i) => {
    const g = groups.get(p);
    if (g) g.push(i);
    else groups.set(p, [i]);
  });
  const lists = [...groups.values()];
  if (lists.length < 2) return;
  const rng = createRng(options.seed);
  const buffer: number[] = [];
  for (let b = 0; b < options.resamples; b++) {
    buffer.length = 0;
    for (let i = 0; i < lists.length; i++) buffer.push(...lists[rng.int(lists.length)]);
    yield Int32Array.from(buffer);
  }
}

export interface PairedEstimate {
  a: number;
  b: number;
  /** B minus A on the same cases, with its percentile interval over the same patient resamples. */
  difference: Estimate;
  /** Share of resamples in which B is better than A (higher, or lower where lower is better). */
  shareBBetter: number;
  /** Whether the interval of the difference excludes 0. */
  significant: boolean;
}

/**
 * A paired patient bootstrap of the difference of a statistic between two sets of predictions of the
 * same cases: each resample draws patients once and evaluates both on them, so case difficulty cancels
 * (two unpaired intervals overlap long after the paired difference excludes 0). With `runs` (several
 * training runs per arm), each resample also draws each arm's runs with replacement from its own seeded
 * stream, and the statistics get the drawn run indices: the interval then covers run-to-run variation
 * too. The point estimates use every run.
 */
export function pairedBootstrap(
  patients: readonly string[],
  statA: (rows: Int32Array, runs: Int32Array) => number,
  statB: (rows: Int32Array, runs: Int32Array) => number,
  options: { resamples: number; seed: number | string; lowerIsBetter?: boolean; runs?: { a: number; b: number } },
): PairedEstimate {
  const all = Int32Array.from(patients.keys());
  const nA = options.runs?.a ?? 1;
  const nB = options.runs?.b ?? 1;
  const a = statA(
    all,
    Int32Array.from({ length: nA }, (_, i) => i),
  );
  const b = statB(
    all,
    Int32Array.from({ length: nB }, (_, i) => i),
  );
  const runRng = createRng(`${options.seed}/runs`);
  const draw = (n: number) => Int32Array.from({ length: n }, () => (n === 1 ? 0 : runRng.int(n)));
  const diffs: number[] = [];
  let better = 0;
  for (const rows of patientResamples(patients, options)) {
    const runsA = draw(nA);
    const runsB = draw(nB);
    const d = statB(rows, runsB) - statA(rows, runsA);
    if (!Number.isFinite(d)) continue;
    diffs.push(d);
    if (options.lowerIsBetter ? d < 0 : d > 0) better++;
  }
  const ok = diffs.length >= options.resamples * 0.5;
  const ci95: [number, number] = ok ? [percentile(diffs, 2.5), percentile(diffs, 97.5)] : [NaN, NaN];
  return {
    a,
    b,
    difference: { value: b - a, ci95 },
    shareBBetter: diffs.length ? better / diffs.length : NaN,
    significant: ok && (ci95[0] > 0 || ci95[1] < 0),
  };
}
