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
export function bootstrapByPatient(patients: readonly string[], statistic: (rows: Int32Array) => number, options: { resamples: number; seed: number | string }): Estimate {
  const groups = new Map<string, number[]>();
  patients.forEach((p, i) => {
    const g = groups.get(p);
    if (g) g.push(i);
    else groups.set(p, [i]);
  });
  const all = Int32Array.from(patients.keys());
  const value = statistic(all);
  const lists = [...groups.values()];
  if (lists.length < 2 || options.resamples < 1) return { value, ci95: [NaN, NaN] };
  const rng = createRng(options.seed);
  const stats: number[] = [];
  const buffer: number[] = [];
  for (let b = 0; b < options.resamples; b++) {
    buffer.length = 0;
    for (let i = 0; i < lists.length; i++) buffer.push(...lists[rng.int(lists.length)]);
    const s = statistic(Int32Array.from(buffer));
    if (Number.isFinite(s)) stats.push(s);
  }
  if (stats.length < options.resamples * 0.5) return { value, ci95: [NaN, NaN] };
  return { value, ci95: [percentile(stats, 2.5), percentile(stats, 97.5)] };
}
