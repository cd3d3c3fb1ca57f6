import { createRng, shuffled } from '../core/index.ts';
import { balancedAccuracy } from '../metrics/index.ts';
import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { fitLogisticProbe, probePredictions, type LogisticProbe } from './logisticProbe.ts';

/**
 * Shortcut susceptibility of a representation, as PathoROB measures it: a biology probe trained on
 * splits whose confounder-biology association is walked from none to total, scored on held-out slides
 * whose composition never moves. APD (PathoROB) and nIPD (croma) reduce the accuracy matrix; confounder
 * decodability asks the plainer question of how well a linear probe names the site or scanner.
 */

/** PathoROB's regularisation grid: C = 10^x for 15 x evenly spaced in [-8, 4], chosen on validation. */
export const PROBE_C_GRID = Array.from({ length: 15 }, (_, i) => 10 ** (-8 + (12 * i) / 14));

/** Cramér's V of a contingency table (rows x columns of counts); empty rows and columns are left out. */
export function cramersV(table: readonly (readonly number[])[]): number {
  const rowSums = table.map((r) => r.reduce((a, b) => a + b, 0));
  const colSums = table[0].map((_, j) => table.reduce((a, r) => a + r[j], 0));
  const n = rowSums.reduce((a, b) => a + b, 0);
  let chi2 = 0;
  for (let i = 0; i < table.length; i++)
    for (let j = 0; j < colSums.length; j++) {
      const e = (rowSums[i] * colSums[j]) / n;
      if (e > 0) chi2 += (table[i][j] - e) ** 2 / e;
    }
  const r = rowSums.filter((v) => v > 0).length;
  const c = colSums.filter((v) => v > 0).length;
  return Math.min(r, c) > 1 ? Math.sqrt(chi2 / (n * (Math.min(r, c) - 1))) : 0;
}

/** APD: per replicate the mean accuracy of the confounded splits over the balanced one, minus 1, averaged (PathoROB). */
export function averagePerformanceDrop(accuracies: readonly (readonly number[])[]): number {
  const replicates = accuracies[0].length;
  let sum = 0;
  for (let r = 0; r < replicates; r++) {
    let ratio = 0;
    for (let s = 1; s < accuracies.length; s++) ratio += accuracies[s][r] / accuracies[0][r];
    sum += ratio / (accuracies.length - 1) - 1;
  }
  return sum / replicates;
}

/**
 * nIPD: the signed trapezoid area over Cramér's V in [0, 1] of (mean accuracy(V) - mean accuracy(0)) /
 * (mean accuracy(0) - chance), replicates averaged first (croma). 0 is no degradation; -0.5 a linear
 * fall to chance. NaN when the balanced probe is not above chance.
 */
export function normalisedIntegratedDegradation(accuracies: readonly (readonly number[])[], v: readonly number[], chance: number): number {
  const means = accuracies.map((row) => row.reduce((a, b) => a + b, 0) / row.length);
  const skill = means[0] - chance;
  if (!(skill > 0)) return NaN;
  const g = means.map((m) => (m - means[0]) / skill);
  let area = 0;
  for (let s = 1; s < v.length; s++) area += ((v[s] - v[s - 1]) * (g[s] + g[s - 1])) / 2;
  return area;
}

/** Rows standardised with the mean and SD of the `fit` rows (a constant feature stays 0). */
function standardise(x: ArrayLike<number>, d: number, fit: readonly number[], rows: readonly number[]): Float64Array {
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const i of fit) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / fit.length;
  for (const i of fit) for (let j = 0; j < d; j++) sd[j] += (x[i * d + j] - mean[j]) ** 2 / fit.length;
  const out = new Float64Array(rows.length * d);
  rows.forEach((i, r) => {
    for (let j = 0; j < d; j++) out[r * d + j] = sd[j] > 0 ? (x[i * d + j] - mean[j]) / Math.sqrt(sd[j]) : 0;
  });
  return out;
}

/**
 * Balanced accuracy of a linear probe (standardised features, C = 1) naming each sample's confounder,
 * out of fold: groups (patients) are dealt to `folds` folds, so a patient is never both fitted and
 * scored. The interval resamples patients over the out-of-fold predictions.
 */
export function confounderDecodability(
  x: ArrayLike<number>,
  d: number,
  confounders: Int32Array,
  groups: readonly string[],
  options: { classes: number; folds?: number; seed: number | string; resamples: number },
): { balancedAccuracy: Estimate; chance: number; folds: number } {
  const unique = shuffled([...new Set(groups)], createRng(`${options.seed}/decodability-folds`));
  const folds = Math.min(options.folds ?? 5, unique.length);
  const foldOf = new Map(unique.map((g, i) => [g, i % folds]));
  const pred = new Int32Array(confounders.length);
  for (let f = 0; f < folds; f++) {
    const fit = groups.flatMap((g, i) => (foldOf.get(g) !== f ? [i] : []));
    const held = groups.flatMap((g, i) => (foldOf.get(g) === f ? [i] : []));
    const probe = fitLogisticProbe(
      standardise(x, d, fit, fit),
      fit.map((i) => confounders[i]),
      fit.length,
      d,
      options.classes,
      { c: 1 },
    );
    probePredictions(probe, standardise(x, d, fit, held), held.length).forEach((p, r) => (pred[held[r]] = p));
  }
  const balancedAccuracyEstimate = bootstrapByPatient(
    groups,
    (rows) =>
      balancedAccuracy(
        Array.from(rows, (i) => confounders[i]),
        Array.from(rows, (i) => pred[i]),
        options.classes,
      ),
    { resamples: options.resamples, seed: options.seed, method: 'percentile' },
  );
  return { balancedAccuracy: balancedAccuracyEstimate, chance: 1 / options.classes, folds };
}

/** One slide of the sweep: its embedding row, biology class, and which of the two confounder values it has (0 or 1). */
export interface SweepSlide {
  row: number;
  label: number;
  confounder: 0 | 1;
}

/**
 * gradelab's confounding schedule, PathoROB's Tolkach-ESCA pattern generalised to any number of classes:
 * confounder 0 favours the lower half of the classes and confounder 1 the upper half. At split s a
 * favoured cell trains on base + s slides and the other on base - s, from V = 0 (s = 0) to V = 1
 * (s = base: every class seen at one confounder only). Each cell keeps `test` slides apart for every split.
 */
export function confoundingSchedule(smallestCell: number, classes: number, validationFraction: number) {
  const test = Math.max(1, Math.round(smallestCell / 4));
  let base = 0;
  while (2 * (base + 1) + Math.ceil(2 * (base + 1) * validationFraction) + test <= smallestCell) base++;
  const favoured = (confounder: number, label: number) => (label < Math.ceil(classes / 2) ? confounder === 0 : confounder === 1);
  const splits = Array.from({ length: base + 1 }, (_, s) => {
    const train = [0, 1].map((c) => Array.from({ length: classes }, (_, l) => (favoured(c, l) ? base + s : base - s)));
    return { train, v: cramersV(train) };
  });
  return { base, test, splits };
}

export interface ProbeSweep {
  /** Slides per cell in the smallest (confounder, class) cell, and the schedule built from it. */
  smallestCell: number;
  testSlidesPerCell: number;
  cramersV: number[];
  /** accuracies[split][replicate]: balanced accuracy on the fixed held-out slides. */
  accuracies: number[][];
  chance: number;
  apd: number;
  nipd: number;
}

/**
 * Runs the sweep: per replicate every cell's slides are shuffled (seeded); per split the probe trains on
 * the front of each cell, picks C on the validation slides behind them, and is scored on the cell's
 * last `test` slides, which no split trains on. Returns undefined when a cell has fewer than 4 slides.
 */
export function probeSweep(
  x: ArrayLike<number>,
  d: number,
  slides: readonly SweepSlide[],
  classes: number,
  options: { replicates: number; seed: number | string; validationFraction?: number; onFit?: () => void },
): ProbeSweep | undefined {
  const fraction = options.validationFraction ?? 0.25;
  const cells = [0, 1].map((c) => Array.from({ length: classes }, (_, l) => slides.filter((s) => s.confounder === c && s.label === l)));
  const smallestCell = Math.min(...cells.flat().map((c) => c.length));
  if (smallestCell < 4) return undefined;
  const schedule = confoundingSchedule(smallestCell, classes, fraction);
  const accuracies = schedule.splits.map(() => [] as number[]);
  const rowsOf = (list: SweepSlide[]) => list.map((s) => s.row);
  const gather = (rows: number[]) => Float64Array.from(rows.flatMap((r) => Array.from({ length: d }, (_, j) => x[r * d + j])));
  for (let r = 0; r < options.replicates; r++) {
    const rng = createRng(`${options.seed}/sweep/${r}`);
    const arranged = cells.map((row) => row.map((cell) => shuffled(cell, rng)));
    const test = arranged.flat().flatMap((cell) => cell.slice(cell.length - schedule.test));
    schedule.splits.forEach((split, s) => {
      const train: SweepSlide[] = [];
      const validation: SweepSlide[] = [];
      arranged.forEach((row, c) =>
        row.forEach((cell, l) => {
          const n = split.train[c][l];
          train.push(...cell.slice(0, n));
          validation.push(...cell.slice(n, n + Math.ceil(n * fraction)));
        }),
      );
      const tx = gather(rowsOf(train));
      const ty = train.map((t) => t.label);
      const vx = gather(rowsOf(validation));
      let best: { score: number; c: number } = { score: -Infinity, c: PROBE_C_GRID[0] };
      let previous: LogisticProbe | undefined;
      for (const c of PROBE_C_GRID) {
        previous = fitLogisticProbe(tx, ty, train.length, d, classes, { c, start: previous });
        const score = balancedAccuracy(
          validation.map((v) => v.label),
          probePredictions(previous, vx, validation.length),
          classes,
        );
        if (score > best.score) best = { score, c };
        options.onFit?.();
      }
      const probe = fitLogisticProbe(tx, ty, train.length, d, classes, { c: best.c });
      options.onFit?.();
      accuracies[s].push(
        balancedAccuracy(
          test.map((t) => t.label),
          probePredictions(probe, gather(rowsOf(test)), test.length),
          classes,
        ),
      );
    });
  }
  const v = schedule.splits.map((s) => s.v);
  return {
    smallestCell,
    testSlidesPerCell: schedule.test,
    cramersV: v,
    accuracies,
    chance: 1 / classes,
    apd: accuracies[0].every((a) => a > 0) ? averagePerformanceDrop(accuracies) : NaN,
    nipd: normalisedIntegratedDegradation(accuracies, v, 1 / classes),
  };
}
