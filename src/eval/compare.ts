import { InputError, type Task } from '../core/index.ts';
import { pairedBootstrap, type PairedEstimate } from './bootstrap.ts';
import { clinicalCutoffs } from './evaluate.ts';
import { accuracy, auroc, calibration, quadraticWeightedKappa } from '../metrics/index.ts';
import type { PredictionRow, Predictions } from './predictions.ts';
import { evaluationScope, type Exclusion } from './evaluationSet.ts';

export interface ComparedMetric extends PairedEstimate {
  metric: string;
  lowerIsBetter: boolean;
}

export interface Comparison {
  nameA: string;
  nameB: string;
  /** Training runs (predictions files) per arm; with one each, the CIs cover case sampling only. */
  runsA: number;
  runsB: number;
  slides: number;
  patients: number;
  /** Which slides were compared: the reference's scope (anomalous slides left out), the same for both arms. */
  evaluationSet: { rule: string; excluded: { slideId: string; reason: string; detail?: string }[] };
  resamples: number;
  seed: number;
  metrics: ComparedMetric[];
}

/** The labelled rows of two prediction files, matched by slide; the same cases or an InputError. */
function matchCases(a: Predictions, b: Predictions): { ra: PredictionRow[]; rb: PredictionRow[] } {
  if (a.k !== b.k) throw new InputError(`${b.path}: ${b.k} classes, but ${a.path} has ${a.k}`);
  const byId = (p: Predictions) => new Map(p.rows.filter((r) => r.label !== undefined).map((r) => [r.slideId, r]));
  const ma = byId(a);
  const mb = byId(b);
  const onlyA = [...ma.keys()].filter((k) => !mb.has(k));
  const onlyB = [...mb.keys()].filter((k) => !ma.has(k));
  if (onlyA.length || onlyB.length) {
    const which = onlyA.length
      ? `${onlyA.length} labelled slides of ${a.path} (${onlyA.slice(0, 3).join(', ')}) are not in ${b.path}`
      : `${onlyB.length} labelled slides of ${b.path} (${onlyB.slice(0, 3).join(', ')}) are not in ${a.path}`;
    throw new InputError(`a paired comparison needs the same cases: ${which}`);
  }
  if (!ma.size) throw new InputError(`${a.path}: no labelled rows to compare`);
  const ids = [...ma.keys()].sort();
  for (const id of ids) {
    if (ma.get(id)!.label !== mb.get(id)!.label)
      throw new InputError(`slide ${id} has label ${ma.get(id)!.label} in ${a.path} but ${mb.get(id)!.label} in ${b.path}`);
    if (ma.get(id)!.patientId !== mb.get(id)!.patientId)
      throw new InputError(
        `slide ${id} belongs to patient ${ma.get(id)!.patientId} in ${a.path} but ${mb.get(id)!.patientId} in ${b.path}`,
      );
  }
  return { ra: ids.map((id) => ma.get(id)!), rb: ids.map((id) => mb.get(id)!) };
}

/**
 * Paired comparison of two models (or one model under two conditions) on the same labelled cases: for
 * QWK, accuracy, ECE and AUROC at each clinical cut-off, B - A with a 95% CI from a paired patient
 * bootstrap and the share of resamples in which B is better. An arm may hold several training runs
 * (seeds) of one recipe: its statistic is then the mean over its runs, and the bootstrap draws runs as
 * well as patients, so a difference must exceed what another seed would change to be shown.
 */
export function comparePredictions(
  a: Predictions | Predictions[],
  b: Predictions | Predictions[],
  options: { task: Task; resamples?: number; seed?: number; nameA?: string; nameB?: string; exclude?: Exclusion[] },
): Comparison {
  const armA = Array.isArray(a) ? a : [a];
  const armB = Array.isArray(b) ? b : [b];
  if (!armA.length || !armB.length) throw new InputError('a comparison needs at least one predictions file per arm');
  // The reference's scope only: an OOD flag is the model's own and would compare different cases.
  const scope = evaluationScope(
    armA[0].rows.filter((r) => r.label !== undefined),
    options.exclude ?? ['anomalous'],
  );
  const keep = new Set(scope.included.map((r) => r.slideId));
  const first = { ...armA[0], rows: armA[0].rows.filter((r) => keep.has(r.slideId)) };
  const restrict = (p: Predictions) => ({ ...p, rows: p.rows.filter((r) => keep.has(r.slideId) || r.label === undefined) });
  for (const p of [...armA, ...armB]) matchCases(armA[0], p);
  const runsA = armA.map((p) => matchCases(first, restrict(p)).rb);
  const runsB = armB.map((p) => matchCases(first, restrict(p)).rb);
  const k = first.k;
  const resamples = options.resamples ?? 1000;
  const seed = options.seed ?? 1;
  const y = runsA[0].map((r) => r.label!);
  const patients = runsA[0].map((r) => r.patientId);
  const pick = <T>(xs: T[], idx: Int32Array) => Array.from(idx, (i) => xs[i]);
  const metricOf = {
    qwk: (rows: PredictionRow[], idx: Int32Array) =>
      quadraticWeightedKappa(
        pick(y, idx),
        pick(rows, idx).map((r) => r.pred),
        k,
      ),
    accuracy: (rows: PredictionRow[], idx: Int32Array) =>
      accuracy(
        pick(y, idx),
        pick(rows, idx).map((r) => r.pred),
      ),
    ece: (rows: PredictionRow[], idx: Int32Array) =>
      calibration(pick(y, idx), Float64Array.from(pick(rows, idx).flatMap((r) => r.probs)), k).ece,
    cut: (threshold: number) => (rows: PredictionRow[], idx: Int32Array) =>
      auroc(
        pick(y, idx).map((v) => (v >= threshold ? 1 : 0)),
        pick(rows, idx).map((r) => r.probs.slice(threshold).reduce((s, p) => s + p, 0)),
      ),
  };
  type Metric = (rows: PredictionRow[], idx: Int32Array) => number;
  const overRuns = (runs: PredictionRow[][], m: Metric) => (idx: Int32Array, drawn: Int32Array) =>
    Array.from(drawn).reduce((s, r) => s + m(runs[r], idx), 0) / drawn.length;
  const metrics: ComparedMetric[] = [];
  const add = (metric: string, m: Metric, lowerIsBetter = false) => {
    metrics.push({
      metric,
      lowerIsBetter,
      ...pairedBootstrap(patients, overRuns(runsA, m), overRuns(runsB, m), {
        resamples,
        seed: `${seed}/compare/${metric}`,
        lowerIsBetter,
        runs: { a: runsA.length, b: runsB.length },
      }),
    });
  };
  add('qwk', metricOf.qwk);
  add('accuracy', metricOf.accuracy);
  add('ece', metricOf.ece, true);
  for (const c of clinicalCutoffs(options.task, k)) add(`auroc ${c.name}`, metricOf.cut(c.threshold));
  return {
    nameA: options.nameA ?? armA.map((p) => p.path).join(', '),
    nameB: options.nameB ?? armB.map((p) => p.path).join(', '),
    runsA: runsA.length,
    runsB: runsB.length,
    slides: y.length,
    patients: new Set(patients).size,
    evaluationSet: {
      rule: scope.set.rule,
      excluded: scope.set.excluded.map(({ slideId, reason, detail }) => ({ slideId, reason, ...(detail ? { detail } : {}) })),
    },
    resamples,
    seed,
    metrics,
  };
}

/** What a comparison's intervals cover, for its readers. */
export function comparisonScope(c: Pick<Comparison, 'runsA' | 'runsB'>): string {
  return c.runsA > 1 && c.runsB > 1
    ? `Each arm is the mean of its training runs (${c.runsA} and ${c.runsB}); each resample draws patients and runs, so the intervals cover run-to-run variation as well as case sampling.`
    : 'One training run per arm: the intervals cover the sampling of cases, not the variation between training runs (seed, data order). A recipe comparison needs several runs per arm (--pred A1.csv,A2.csv --pred B1.csv,B2.csv).';
}

/** One line per metric for reports: "QWK: B - A = +0.041 (95% CI -0.012 to +0.090); B better in 93% of resamples". */
export function describeComparison(c: Comparison): string[] {
  const sign = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(3)}` : 'n/a');
  return c.metrics.map(
    (m) =>
      `${m.metric}: ${c.nameB} ${m.b.toFixed(3)} vs ${c.nameA} ${m.a.toFixed(3)}, difference ${sign(m.difference.value)} (${Number.isFinite(m.difference.ci95[0]) ? `95% CI ${sign(m.difference.ci95[0])} to ${sign(m.difference.ci95[1])}` : 'no interval'}); ${c.nameB} better in ${(m.shareBBetter * 100).toFixed(0)}% of resamples${verdictOf(m)}`,
  );
}

/** What a compared metric allows one to say, as a clause after its figures. */
export function verdictOf(m: Pick<PairedEstimate, 'significant' | 'note'>): string {
  if (m.note) return ` (no verdict: ${m.note})`;
  return m.significant ? '' : ' (the interval includes 0: no evidence of a difference)';
}
