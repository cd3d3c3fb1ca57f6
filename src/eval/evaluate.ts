import { groupBy, InputError, type Task } from '../core/index.ts';
import { raterAgreement, type AgreementReport } from './agreement.ts';
import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { aucEstimate, proportionEstimate } from './intervals.ts';
import { DEFAULT_EXCLUSIONS, evaluationScope, type EvaluationSet, type Exclusion } from './evaluationSet.ts';
import {
  auroc,
  averagePrecision,
  balancedAccuracy,
  brierScore,
  calibration,
  cohenKappa,
  confusionMatrix,
  prCurve,
  quadraticWeightedKappa,
  rocCurve,
  type ReliabilityBin,
} from '../metrics/index.ts';
import type { Predictions, PredictionRow } from './predictions.ts';
import { riskCoverage, type CoveragePoint } from './referral.ts';
import { selectivePrediction, type SelectiveReport } from './selective.ts';

export interface EvaluateOptions {
  task?: Task;
  /** Slides left out of the metrics and reported apart (default: anomalous and OOD-flagged ones). */
  exclude?: Exclusion[];
  resamples?: number;
  seed?: number;
  bins?: number;
}

export interface CutoffResult {
  name: string;
  /** Positive when the class index is at least this. */
  threshold: number;
  auroc: Estimate;
  aupr: Estimate;
  sensitivity: Estimate;
  specificity: Estimate;
  prevalence: number;
  roc: { fpr: number; tpr: number }[];
  pr: { recall: number; precision: number }[];
}

export interface SubgroupResult {
  n: number;
  patients: number;
  /** Undefined for a group of one true grade, where kappa measures nothing (its expected agreement is its observed). */
  qwk?: Estimate;
  accuracy: Estimate;
  /** Mean absolute grade error. */
  mae: Estimate;
}

export interface MetricsReport {
  task: Task;
  k: number;
  classNames: string[];
  /** Exactly which slides the metrics are about, and which were left out and why. */
  evaluationSet: EvaluationSet;
  n: number;
  patients: number;
  unlabelled: number;
  resamples: number;
  seed: number;
  metrics: {
    qwk: Estimate;
    kappa: Estimate;
    kappa_linear: Estimate;
    accuracy: Estimate;
    balanced_accuracy: Estimate;
    mae: Estimate;
    brier: Estimate;
    ece: Estimate;
    auroc?: Estimate;
  };
  confusion: number[][];
  perClass: {
    name: string;
    support: number;
    sensitivity: Estimate;
    specificity: Estimate;
    ppv: Estimate;
    npv: Estimate;
    auroc: Estimate;
    aupr: Estimate;
  }[];
  cutoffs: CutoffResult[];
  reliability: ReliabilityBin[];
  subgroups: { site: Record<string, SubgroupResult>; scanner: Record<string, SubgroupResult>; grade: Record<string, SubgroupResult> };
  agreement?: AgreementReport & { modelVsRater: { rater: string; qwk: Estimate }[] };
  referral: { uncertainty: 'column' | '1 - max probability'; curve: CoveragePoint[]; aurc: number };
  /** AURC and excess AURC per uncertainty score, and the coverage that reaches each target QWK. */
  selective: SelectiveReport;
}

export function inferTask(k: number, task?: Task): Task {
  if (task) return task;
  if (k === 6) return 'prostate';
  if (k === 3) return 'breast';
  return 'prostate';
}

export function classNames(task: Task, k: number): string[] {
  if (task === 'prostate' && k === 6) return ['ISUP 0', 'ISUP 1', 'ISUP 2', 'ISUP 3', 'ISUP 4', 'ISUP 5'];
  if (task === 'breast' && k === 3) return ['grade 1', 'grade 2', 'grade 3'];
  return Array.from({ length: k }, (_, i) => `class ${i}`);
}

/** The clinical cut-offs: benign vs cancer, ISUP >= 2 and >= 3 (prostate); Nottingham 3 vs 1-2 (breast). */
export function clinicalCutoffs(task: Task, k: number): { name: string; threshold: number }[] {
  if (task === 'prostate' && k === 6)
    return [
      { name: 'cancer (ISUP >= 1)', threshold: 1 },
      { name: 'ISUP >= 2', threshold: 2 },
      { name: 'ISUP >= 3', threshold: 3 },
    ];
  if (task === 'breast' && k === 3) return [{ name: 'grade 3 vs 1-2', threshold: 2 }];
  return [{ name: `class >= ${Math.ceil(k / 2)}`, threshold: Math.ceil(k / 2) }];
}

/**
 * Everything gradelab reports about a set of graded predictions, each number with a 95% confidence
 * interval from a seeded bootstrap over patients.
 */
export function evaluatePredictions(preds: Predictions, options: EvaluateOptions = {}): MetricsReport {
  const k = preds.k;
  const task = inferTask(k, options.task);
  const resamples = options.resamples ?? 1000;
  const seed = options.seed ?? 1;
  const labelled = preds.rows.filter((r) => r.label !== undefined);
  if (labelled.length === 0) throw new InputError(`${preds.path}: no labelled rows to evaluate (every label is empty)`);
  const scope = evaluationScope(labelled, options.exclude ?? DEFAULT_EXCLUSIONS);
  const rows = scope.included;
  if (rows.length === 0)
    throw new InputError(
      `${preds.path}: no labelled slide is left to evaluate once ${scope.set.exclude.join(' and ')} slides are excluded`,
    );
  const n = rows.length;
  const y = Int32Array.from(rows, (r) => r.label!);
  const pred = Int32Array.from(rows, (r) => r.pred);
  const probs = Float64Array.from(rows.flatMap((r) => r.probs));
  const patients = rows.map((r) => r.patientId);
  const boot = (stat: (idx: Int32Array) => number, key: string, subset?: number[]): Estimate => {
    const ids = subset ?? Array.from({ length: n }, (_, i) => i);
    return bootstrapByPatient(
      ids.map((i) => patients[i]),
      (local) => stat(Int32Array.from(local, (j) => ids[j])),
      { resamples, seed: `${seed}/${key}` },
    );
  };
  const pick = <T extends Int32Array | Float64Array>(a: T, idx: Int32Array, width = 1): T => {
    const out = new (a.constructor as new (n: number) => T)(idx.length * width);
    for (let i = 0; i < idx.length; i++) for (let c = 0; c < width; c++) out[i * width + c] = a[idx[i] * width + c];
    return out;
  };
  /** A proportion over the rows `idx` (its denominator) with Wilson's interval at the patients' effective size. */
  const prop = (idx: readonly number[], success: (i: number) => boolean, key: string): Estimate =>
    proportionEstimate(
      idx.map((i) => (success(i) ? 1 : 0)),
      idx.map((i) => patients[i]),
      { resamples, seed: `${seed}/${key}` },
    );
  /** An AUROC with Newcombe's score interval at the patients' effective size. */
  const aucOf = (labels: Int32Array, scores: Float64Array, key: string): Estimate =>
    aucEstimate(labels, patients, (idx) => auroc(pick(labels, idx), pick(scores, idx)), { resamples, seed: `${seed}/${key}` });
  const all = Array.from({ length: n }, (_, i) => i);
  const ys = (idx: Int32Array) => pick(y, idx);
  const ps = (idx: Int32Array) => pick(pred, idx);
  const prs = (idx: Int32Array) => pick(probs, idx, k);
  const mae = (idx: Int32Array) => {
    let s = 0;
    for (const i of idx) s += Math.abs(y[i] - pred[i]);
    return idx.length ? s / idx.length : NaN;
  };
  const scoreAtLeast = (t: number) => Float64Array.from(rows, (r) => r.probs.slice(t).reduce((a, b) => a + b, 0));

  const ovr = (c: number) => ({ labels: Int32Array.from(y, (v) => (v === c ? 1 : 0)), scores: Float64Array.from(rows, (r) => r.probs[c]) });
  const perClass = classNames(task, k).map((name, c) => {
    const { labels, scores } = ovr(c);
    const isC = (i: number) => y[i] === c;
    const callC = (i: number) => pred[i] === c;
    return {
      name,
      support: labels.reduce((a, b) => a + b, 0),
      sensitivity: prop(all.filter(isC), callC, `sensitivity-${c}`),
      specificity: prop(
        all.filter((i) => !isC(i)),
        (i) => !callC(i),
        `specificity-${c}`,
      ),
      ppv: prop(all.filter(callC), isC, `ppv-${c}`),
      npv: prop(
        all.filter((i) => !callC(i)),
        (i) => !isC(i),
        `npv-${c}`,
      ),
      auroc: aucOf(labels, scores, `auroc-${c}`),
      aupr: boot((idx) => averagePrecision(pick(labels, idx), pick(scores, idx)), `aupr-${c}`),
    };
  });
  const presentAurocs = perClass.filter((c) => c.support > 0 && c.support < n);
  const macroAuroc =
    presentAurocs.length >= 2
      ? boot((idx) => {
          const vals = perClass
            .map((_, c) => {
              const { labels, scores } = ovr(c);
              return auroc(pick(labels, idx), pick(scores, idx));
            })
            .filter(Number.isFinite);
          return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
        }, 'auroc-macro')
      : undefined;

  const cutoffs: CutoffResult[] = clinicalCutoffs(task, k).map(({ name, threshold }) => {
    const labels = Int32Array.from(y, (v) => (v >= threshold ? 1 : 0));
    const scores = scoreAtLeast(threshold);
    const positive = (i: number) => y[i] >= threshold;
    const called = (i: number) => pred[i] >= threshold;
    return {
      name,
      threshold,
      auroc: aucOf(labels, scores, `cut-auroc-${threshold}`),
      aupr: boot((idx) => averagePrecision(pick(labels, idx), pick(scores, idx)), `cut-aupr-${threshold}`),
      sensitivity: prop(all.filter(positive), called, `cut-sens-${threshold}`),
      specificity: prop(
        all.filter((i) => !positive(i)),
        (i) => !called(i),
        `cut-spec-${threshold}`,
      ),
      prevalence: labels.reduce((a, b) => a + b, 0) / n,
      roc: rocCurve(labels, scores).map(({ fpr, tpr }) => ({ fpr, tpr })),
      pr: prCurve(labels, scores).map(({ recall, precision }) => ({ recall, precision })),
    };
  });

  const subgroup = (key: (r: PredictionRow) => string, name: string, withQwk = true) => {
    const groups = groupBy(rows, key, (_, i) => i);
    return Object.fromEntries(
      [...groups.entries()]
        .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
        .map(([g, idx]) => [
          g,
          {
            n: idx.length,
            patients: new Set(idx.map((i) => patients[i])).size,
            ...(withQwk ? { qwk: boot((s) => quadraticWeightedKappa(ys(s), ps(s), k), `${name}-${g}-qwk`, idx) } : {}),
            accuracy: prop(idx, (i) => y[i] === pred[i], `${name}-${g}-acc`),
            mae: boot(mae, `${name}-${g}-mae`, idx),
          },
        ]),
    );
  };

  const cal = calibration(y, probs, k, options.bins ?? 15);
  let agreement: MetricsReport['agreement'];
  const raterRows = rows.map((r) => r.raters);
  const ag = raterAgreement(raterRows, k);
  if (ag) {
    agreement = {
      ...ag,
      modelVsRater: ag.raters.map((rater) => {
        const idx = rows.map((r, i) => (r.raters[rater] !== undefined ? i : -1)).filter((i) => i >= 0);
        return {
          rater,
          qwk: boot(
            (s) =>
              quadraticWeightedKappa(
                Int32Array.from(s, (i) => rows[i].raters[rater]),
                ps(s),
                k,
              ),
            `rater-${rater}`,
            idx,
          ),
        };
      }),
    };
  }
  const hasU = rows.every((r) => r.uncertainty !== undefined);
  const uncertainty = Float64Array.from(rows, (r) => (hasU ? r.uncertainty! : 1 - Math.max(...r.probs)));
  // The cut-off a referral policy is usually held to: clinically significant cancer (ISUP >= 2), grade 3.
  const cutoffList = clinicalCutoffs(task, k);
  const mainCutoff = cutoffList[Math.min(1, cutoffList.length - 1)];
  const referral = riskCoverage(y, pred, uncertainty, k, 0.05, 0.1, mainCutoff.threshold);

  return {
    task,
    k,
    classNames: classNames(task, k),
    evaluationSet: { ...scope.set, slides: rows.map((r) => r.slideId), patients: new Set(patients).size },
    n,
    patients: new Set(patients).size,
    unlabelled: preds.rows.length - n,
    resamples,
    seed,
    metrics: {
      qwk: boot((idx) => quadraticWeightedKappa(ys(idx), ps(idx), k), 'qwk'),
      kappa: boot((idx) => cohenKappa(ys(idx), ps(idx), k), 'kappa'),
      kappa_linear: boot((idx) => cohenKappa(ys(idx), ps(idx), k, 'linear'), 'kappa-linear'),
      accuracy: prop(all, (i) => y[i] === pred[i], 'accuracy'),
      balanced_accuracy: boot((idx) => balancedAccuracy(ys(idx), ps(idx), k), 'balanced-accuracy'),
      mae: boot(mae, 'mae'),
      brier: boot((idx) => brierScore(ys(idx), prs(idx), k), 'brier'),
      ece: boot((idx) => calibration(ys(idx), prs(idx), k, options.bins ?? 15).ece, 'ece'),
      ...(macroAuroc ? { auroc: macroAuroc } : {}),
    },
    confusion: confusionMatrix(y, pred, k),
    perClass,
    cutoffs,
    reliability: cal.bins,
    subgroups: {
      site: subgroup((r) => r.site, 'site'),
      scanner: subgroup((r) => r.scanner, 'scanner'),
      grade: subgroup((r) => classNames(task, k)[r.label!], 'grade', false),
    },
    agreement,
    referral: { uncertainty: hasU ? 'column' : '1 - max probability', ...referral },
    selective: selectivePrediction(
      rows.map((r, i) => ({
        y: y[i],
        pred: pred[i],
        probs: r.probs,
        patientId: r.patientId,
        oodScore: r.oodScore,
        uncertainty: r.uncertainty,
      })),
      referral.curve,
      { resamples, seed, cutoff: mainCutoff.name },
    ),
  };
}
