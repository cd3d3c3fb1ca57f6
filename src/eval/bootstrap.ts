import { createRng, normalCdf, normalQuantile, percentile, sortedQuantile } from '../core/index.ts';

/** How an interval was made: bootstrap (BCa or percentile), Wilson's score (proportions), Newcombe's score (AUROC). */
export type IntervalMethod = 'bca' | 'percentile' | 'wilson' | 'newcombe-score';

export interface Estimate {
  value: number;
  /** 95% confidence interval; [NaN, NaN] when not computable (`note` says why). */
  ci95: [number, number];
  method?: IntervalMethod;
  /** Why there is no interval: too few patients, or every resample gave the same value. */
  note?: string;
}

/**
 * The BCa bootstrap interval (Efron & Tibshirani 1993, ch. 14): percentiles of the bootstrap
 * distribution moved by the bias correction z0 (where the estimate falls among the resamples) and the
 * acceleration a (the skewness of the jackknife values), so an interval near a boundary bends toward
 * it instead of sitting symmetrically. `boot` are the resampled statistics, `jackknife` the
 * leave-one-patient-out ones.
 */
export function bcaInterval(value: number, boot: readonly number[], jackknife: readonly number[], level = 0.95): [number, number] {
  const sorted = Float64Array.from(boot).sort();
  const B = sorted.length;
  let below = 0;
  let equal = 0;
  for (const s of sorted) {
    if (s < value) below++;
    else if (s === value) equal++;
  }
  // A share of 0 or 1 would put z0 at infinity: held half a resample inside (scipy does likewise).
  const share = Math.min(1 - 0.5 / B, Math.max(0.5 / B, (below + equal / 2) / B));
  const z0 = normalQuantile(share);
  const jk = jackknife.filter(Number.isFinite);
  const mean = jk.reduce((a, b) => a + b, 0) / (jk.length || 1);
  let num = 0;
  let den = 0;
  for (const v of jk) {
    const d = mean - v;
    num += d * d * d;
    den += d * d;
  }
  const a = den > 0 ? num / (6 * den ** 1.5) : 0;
  const at = (alpha: number) => {
    const z = normalQuantile(alpha);
    return sortedQuantile(sorted, normalCdf(z0 + (z0 + z) / (1 - a * (z0 + z))));
  };
  return [at((1 - level) / 2), at(1 - (1 - level) / 2)];
}

/**
 * Patient-level bootstrap: resample patients with replacement (all of a patient's rows go together, so
 * correlated slides and tiles do not shrink the interval), recompute the statistic, and take the BCa
 * interval (or plain percentiles). Seeded; resamples where the statistic is undefined (NaN) are dropped.
 * A bootstrap distribution of one value (a perfect score on a small set resamples to itself) gives no
 * interval, with a note, never a collapsed "1.000 (1.000-1.000)".
 */
export function bootstrapByPatient(
  patients: readonly string[],
  statistic: (rows: Int32Array) => number,
  options: { resamples: number; seed: number | string; method?: 'bca' | 'percentile' },
): Estimate {
  const method = options.method ?? 'bca';
  const value = statistic(Int32Array.from(patients.keys()));
  const stats: number[] = [];
  for (const rows of patientResamples(patients, options)) {
    const s = statistic(rows);
    if (Number.isFinite(s)) stats.push(s);
  }
  const groups = patientGroups(patients);
  if (groups.length < 2) return { value, ci95: [NaN, NaN], method, note: 'one patient: no interval' };
  if (stats.length < options.resamples * 0.5) return { value, ci95: [NaN, NaN], method, note: 'undefined in most resamples' };
  const lo = Math.min(...stats);
  if (lo === Math.max(...stats))
    return { value, ci95: [NaN, NaN], method, note: `every resample gave ${lo.toFixed(3)}: too few cases to bound it` };
  if (method === 'percentile') return { value, ci95: [percentile(stats, 2.5), percentile(stats, 97.5)], method };
  const jackknife = groups.map((_, g) => statistic(Int32Array.from(groups.flatMap((rows, h) => (h === g ? [] : rows)))));
  return { value, ci95: bcaInterval(value, stats, jackknife), method };
}

/** Row indices per patient, in first-seen order. */
function patientGroups(patients: readonly string[]): number[][] {
  const groups = new Map<string, number[]>();
  patients.forEach((p, i) => {
    const g = groups.get(p);
    if (g) g.push(i);
    else groups.set(p, [i]);
  });
  return [...groups.values()];
}

/** The row sets of a seeded patient bootstrap: patients drawn with replacement, each with all its rows. */
export function* patientResamples(
  patients: readonly string[],
  options: { resamples: number; seed: number | string },
): Generator<Int32Array> {
  const lists = patientGroups(patients);
  if (lists.length < 2) return;
  const rng = createRng(options.seed);
  const buffer: number[] = [];
  for (let b = 0; b < options.resamples; b++) {
    buffer.length = 0;
    for (let i = 0; i < lists.length; i++) buffer.push(...lists[rng.int(lists.length)]);
    yield Int32Array.from(buffer);
  }
}

/**
 * Fewer patients than this and a paired comparison or a robustness drop gets no verdict: its interval
 * is printed, but "better" or "worse" is not claimed (a percentile bootstrap over a handful of patients
 * undercovers badly; see the report's methods).
 */
export const MIN_PATIENTS_FOR_VERDICT = 20;

export interface PairedEstimate {
  a: number;
  b: number;
  /** B minus A on the same cases, with its percentile interval over the same patient resamples. */
  difference: Estimate;
  /** Share of resamples in which B is better than A (higher, or lower where lower is better). */
  shareBBetter: number;
  /** Whether the interval of the difference excludes 0, on enough patients for a verdict. */
  significant: boolean;
  /** Patients behind the comparison. */
  patients: number;
  /** Why no verdict is given (too few patients, identical in every resample), when that is so. */
  note?: string;
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
  const count = patientGroups(patients).length;
  const identical = diffs.length > 0 && diffs.every((d) => d === 0);
  const ok = diffs.length >= options.resamples * 0.5 && !identical;
  const ci95: [number, number] = ok ? [percentile(diffs, 2.5), percentile(diffs, 97.5)] : [NaN, NaN];
  const enough = count >= MIN_PATIENTS_FOR_VERDICT;
  const note = identical
    ? 'identical in every resample: no difference to measure'
    : !enough
      ? `${count} patients: fewer than the ${MIN_PATIENTS_FOR_VERDICT} a verdict needs`
      : undefined;
  return {
    a,
    b,
    difference: { value: b - a, ci95, method: 'percentile', ...(identical ? { note } : {}) },
    shareBBetter: diffs.length ? better / diffs.length : NaN,
    significant: ok && enough && (ci95[0] > 0 || ci95[1] < 0),
    patients: count,
    ...(note ? { note } : {}),
  };
}
