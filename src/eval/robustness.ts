import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { InputError, type HeadKind, type PatternGrading, type RgbImage } from '../core/index.ts';
import type { TileRow } from '../data/index.ts';
import { bootstrapByPatient, pairedBootstrap, type Estimate, type PairedEstimate } from './bootstrap.ts';
import { accuracy, calibration, quadraticWeightedKappa } from '../metrics/index.ts';
import { poolSlides } from '../metrics/index.ts';
import { compare, DROP_METRICS, suiteUnits, type Criterion, type Suite } from './suite.ts';

/** What the runner needs from a model: class probabilities and, when a detector is fitted, OOD scores. */
export interface SuiteScorer {
  classes: number[];
  head: HeadKind;
  /** A pattern head's rule from areas to grade. */
  grading?: PatternGrading;
  /** Scores same-size 8-bit tiles (the perturbed batch). */
  score(images: readonly RgbImage[]): Promise<{ probs: Float32Array; oodScores?: Float64Array }>;
  /** Slide-level OOD: aggregate tile scores and flag above the calibrated threshold. */
  slideOodFlags?(tiles: TileRow[], tileScores: Float64Array): Map<string, boolean>;
}

export interface UnitResult {
  condition: string;
  severity: number;
  slides: number;
  qwk: Estimate;
  accuracy: Estimate;
  ece: number;
  oodFlagRate: number | null;
  perSite: Record<string, number>;
  /** Per slide: [slide, patient, label, predicted], so units can be compared case by case (paired). */
  slidePreds?: [string, string, number, number][];
  /** Number of classes (for kappa of the paired comparisons). */
  k?: number;
  seconds: number;
  /** Reading and decoding the clean tiles (shared by every unit of a run, so charged to the first). */
  readSeconds?: number;
  perturbSeconds: number;
  inferSeconds: number;
}

export interface SuiteUnit {
  condition: string;
  severity: number;
  transform?: Record<string, unknown>;
}

export interface UnitTiming {
  seconds: number;
  readSeconds: number;
  perturbSeconds: number;
  inferSeconds: number;
}

/**
 * A unit's metrics from its tile probabilities (tiles in order): slides by mean pooling, QWK and
 * accuracy with patient-bootstrap CIs, ECE, OOD flag rate from the slide flags, per-site QWK.
 */
export function unitResult(
  unit: SuiteUnit,
  tiles: readonly TileRow[],
  scorer: Pick<SuiteScorer, 'classes' | 'head' | 'grading' | 'slideOodFlags'>,
  probs: Float32Array,
  oodScores: Float64Array | undefined,
  timing: UnitTiming,
  options: { resamples: number; seed: number },
): UnitResult {
  const k = scorer.classes.length;
  const slides = poolSlides({ tiles, k, probs, head: scorer.head, grading: scorer.grading }, scorer.classes, 'mean');
  const y = slides.map((s) => s.label!);
  const p = slides.map((s) => s.pred);
  const patients = slides.map((s) => s.patientId);
  const boot = (f: (idx: Int32Array) => number, key: string) =>
    bootstrapByPatient(patients, f, { resamples: options.resamples, seed: `${options.seed}/${unit.condition}/${unit.severity}/${key}` });
  const flags = oodScores && scorer.slideOodFlags ? scorer.slideOodFlags([...tiles], oodScores) : undefined;
  const perSite: Record<string, number> = {};
  for (const site of [...new Set(slides.map((s) => s.site))].sort()) {
    const idx = slides.map((s, i) => (s.site === site ? i : -1)).filter((i) => i >= 0);
    perSite[site] = quadraticWeightedKappa(
      idx.map((i) => y[i]),
      idx.map((i) => p[i]),
      k,
    );
  }
  return {
    condition: unit.condition,
    severity: unit.severity,
    slides: slides.length,
    qwk: boot(
      (idx) =>
        quadraticWeightedKappa(
          Array.from(idx, (i) => y[i]),
          Array.from(idx, (i) => p[i]),
          k,
        ),
      'qwk',
    ),
    accuracy: boot(
      (idx) =>
        accuracy(
          Array.from(idx, (i) => y[i]),
          Array.from(idx, (i) => p[i]),
        ),
      'acc',
    ),
    ece: calibration(y, Float64Array.from(slides.flatMap((s) => s.probs)), k).ece,
    oodFlagRate: flags ? [...flags.values()].filter(Boolean).length / flags.size : null,
    perSite,
    slidePreds: slides.map((s) => [s.slideId, s.patientId, s.label!, s.pred]),
    k,
    ...timing,
  };
}

/**
 * QWK of B minus QWK of A on the slides both units scored, by a paired patient bootstrap (the same
 * resampled patients for both): how sure a drop, or a difference between severities, is.
 */
export function pairedQwk(
  a: UnitResult,
  b: UnitResult,
  k: number,
  options: { resamples: number; seed: string },
): PairedEstimate | undefined {
  if (!a.slidePreds || !b.slidePreds) return undefined;
  const mb = new Map(b.slidePreds.map((r) => [r[0], r]));
  const both = a.slidePreds.filter((r) => mb.has(r[0]));
  if (both.length < 2) return undefined;
  const y = both.map((r) => r[2]);
  const pa = both.map((r) => r[3]);
  const pb = both.map((r) => mb.get(r[0])![3]);
  const q = (p: number[]) => (idx: Int32Array) =>
    quadraticWeightedKappa(
      Array.from(idx, (i) => y[i]),
      Array.from(idx, (i) => p[i]),
      k,
    );
  return pairedBootstrap(
    both.map((r) => r[1]),
    q(pa),
    q(pb),
    options,
  );
}

/** Results are streamed one JSON line per unit, so an interrupted suite resumes where it stopped. */
export function readUnitResults(path: string): UnitResult[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        // JSON wrote an undefined estimate (NaN) as null: read it back as NaN.
        return [
          JSON.parse(l, (key, v) =>
            key === 'ci95' && Array.isArray(v) ? v.map((x) => (x === null ? NaN : x)) : key === 'value' && v === null ? NaN : v,
          ) as UnitResult,
        ];
      } catch {
        return [];
      }
    });
}

export function appendUnitResult(path: string, r: UnitResult): void {
  appendFileSync(path, `${JSON.stringify(r)}\n`);
}

export interface CriterionResult {
  criterion: string;
  pass: boolean;
  /** pass, fail, or not evaluable (the clean model is below the suite's floor, or grades every slide alike). */
  status: 'pass' | 'fail' | 'not-evaluable';
  evidence: string;
}

export interface SuiteSummary {
  suite: string;
  /** Test tiles per slide the suite ran on (a subsample of each slide's tiles). */
  tilesPerSlide: number;
  clean: UnitResult;
  units: (UnitResult & {
    qwkDrop: number;
    accuracyDrop: number;
    ce: number;
    ceBaseline?: number;
    qwkDropCi?: [number, number];
    dropSignificant?: boolean;
    /** Why the drop gets no verdict (too few patients, identical in every resample). */
    dropNote?: string;
  })[];
  /** Per corruption: QWK at severity 5 minus at severity 1 (paired), to tell whether severity matters at all. */
  severitySeparation: { condition: string; low: number; high: number; difference: Estimate; significant: boolean; note?: string }[];
  /**
   * ImageNet-C (Hendrycks & Dietterich 2019): CE_c = sum_s E_s,c / sum_s E_s,c(baseline) over severities
   * 1-5; relative CE_c = sum_s (E_s,c - E_clean) / sum_s (E^b_s,c - E^b_clean). `oneOff` marks conditions
   * applied once (a scanner profile, a normalisation): reported here, never averaged into mCE.
   */
  corruptionErrors: { condition: string; oneOff: boolean; ce: number | null; relativeCe: number | null }[];
  /** Mean CE over the corruptions (conditions with severities) only; null without a baseline. */
  mCE: number | null;
  /** Mean relative CE over the corruptions whose relative CE is defined (baseline error moved with severity). */
  relativeMCE: number | null;
  /** Corruptions left out of relativeMCE because the baseline's errors equal its clean error (0 / 0, within half a slide). */
  relativeUndefined: string[];
  criteria: CriterionResult[];
  passed: boolean;
}

function unitMetric(u: SuiteSummary['units'][number], metric: Criterion['metric']): number | null {
  switch (metric) {
    case 'qwk':
      return u.qwk.value;
    case 'qwk_drop':
      return u.qwkDrop;
    case 'accuracy':
      return u.accuracy.value;
    case 'accuracy_drop':
      return u.accuracyDrop;
    case 'ece':
      return u.ece;
    case 'ood_flag_rate':
      return u.oodFlagRate;
    case 'ce':
      return u.ce;
  }
}

/**
 * Why drop criteria cannot judge this model, or undefined when they can: a clean QWK below the suite's
 * floor, or one predicted grade for every clean slide (nothing to lose, so every drop is 0).
 */
export function cleanBelowFloor(clean: UnitResult, floorQwk: number): string | undefined {
  const preds = new Set((clean.slidePreds ?? []).map((s) => s[3]));
  if (preds.size === 1) return `the model predicts one grade for every clean slide (class ${[...preds][0]}): it has nothing to lose`;
  if (!(clean.qwk.value >= floorQwk))
    return `clean QWK ${Number.isFinite(clean.qwk.value) ? clean.qwk.value.toFixed(3) : 'undefined'} is below the suite's floor of ${floorQwk}`;
  return undefined;
}

/** Resamples of the paired comparisons in a suite summary (per unit: against clean; per corruption: severities). */
const PAIRED_RESAMPLES = 500;

/** Joins unit results (from one run or several shards) into the suite's summary, deterministically. */
export function summariseSuite(suite: Suite, criteria: Criterion[], results: UnitResult[], baseline?: UnitResult[]): SuiteSummary {
  const order = suiteUnits(suite).map((u) => `${u.condition}/${u.severity}`);
  const byKey = new Map(results.map((r) => [`${r.condition}/${r.severity}`, r]));
  const clean = byKey.get('clean/0');
  if (!clean) throw new InputError('no clean results: run the suite (or merge every shard, the one holding "clean" among them) first');
  const missing = order.filter((k) => !byKey.has(k));
  if (missing.length)
    throw new InputError(
      `results are missing ${missing.length} conditions (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}): merge every shard of the suite`,
    );
  const baseByKey = new Map((baseline ?? []).map((r) => [`${r.condition}/${r.severity}`, r]));
  const baseClean = baseByKey.get('clean/0');
  const units = order.map((k) => {
    const u = byKey.get(k)!;
    const b = baseByKey.get(k);
    // The drop's interval from a paired bootstrap against clean on the same slides (CI of clean - unit).
    const paired = u.k ? pairedQwk(clean, u, u.k, { resamples: PAIRED_RESAMPLES, seed: `suite/${k}/drop` }) : undefined;
    const qwkDropCi: [number, number] | undefined = paired ? [-paired.difference.ci95[1], -paired.difference.ci95[0]] : undefined;
    return {
      ...u,
      qwkDrop: clean.qwk.value - u.qwk.value,
      accuracyDrop: clean.accuracy.value - u.accuracy.value,
      ce: 1 - u.accuracy.value,
      ceBaseline: b ? 1 - b.accuracy.value : undefined,
      qwkDropCi,
      dropSignificant: paired?.significant,
      ...(paired?.note ? { dropNote: paired.note } : {}),
    };
  });
  const severitySeparation = suite.conditions.flatMap((c) => {
    const sev = [...(c.severities ?? [])].sort((x, y) => x - y);
    if (sev.length < 2) return [];
    const lo = byKey.get(`${c.name}/${sev[0]}`)!;
    const hi = byKey.get(`${c.name}/${sev[sev.length - 1]}`)!;
    const p = lo.k ? pairedQwk(lo, hi, lo.k, { resamples: PAIRED_RESAMPLES, seed: `suite/${c.name}/severity` }) : undefined;
    return p
      ? [
          {
            condition: c.name,
            low: sev[0],
            high: sev[sev.length - 1],
            difference: p.difference,
            significant: p.significant,
            ...(p.note ? { note: p.note } : {}),
          },
        ]
      : [];
  });
  const corruptionErrors = suite.conditions.map((c) => {
    const oneOff = !c.severities?.length;
    const us = units.filter((u) => u.condition === c.name);
    if (!baseline || us.some((u) => u.ceBaseline === undefined) || !baseClean)
      return { condition: c.name, oneOff, ce: null, relativeCe: null };
    const num = us.reduce((s, u) => s + u.ce, 0);
    const den = us.reduce((s, u) => s + u.ceBaseline!, 0);
    const relNum = us.reduce((s, u) => s + (u.ce - (1 - clean.accuracy.value)), 0);
    const relDen = us.reduce((s, u) => s + (u.ceBaseline! - (1 - baseClean.accuracy.value)), 0);
    // Errors move in steps of one slide (1 / slides) per severity: a baseline change smaller than half a
    // step is floating-point noise, and a relative CE over it is undefined, not 10^14.
    const step = 1 / Math.max(1, clean.slides);
    return { condition: c.name, oneOff, ce: den > 0 ? num / den : null, relativeCe: Math.abs(relDen) > step / 2 ? relNum / relDen : null };
  });
  const floorProblem = cleanBelowFloor(clean, suite.floor.qwk);
  const mean = (xs: (number | null)[]) =>
    xs.length && xs.every((x) => x !== null) ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length : null;
  const corruptions = baseline ? corruptionErrors.filter((c) => !c.oneOff) : [];
  const relDefined = corruptions.filter((c) => c.relativeCe !== null);
  const evaluated: CriterionResult[] = criteria.map((c) => {
    if (floorProblem && DROP_METRICS.includes(c.metric))
      return { criterion: c.text, pass: false, status: 'not-evaluable', evidence: `not evaluable: ${floorProblem}` };
    const applicable = units.filter(
      (u) =>
        (!c.condition || u.condition === c.condition) &&
        (!c.severity || (u.severity > 0 && compare(u.severity, c.severity.op, c.severity.value))),
    );
    const values = applicable
      .map((u) => ({ u, v: unitMetric(u, c.metric) }))
      .filter((x): x is { u: typeof x.u; v: number } => x.v !== null && Number.isFinite(x.v));
    if (!values.length)
      return {
        criterion: c.text,
        pass: false,
        status: 'not-evaluable',
        evidence: 'no condition to judge it on (missing OOD detector or severities)',
      };
    const failing = values.filter((x) => !compare(x.v, c.op, c.value));
    const worst = values.reduce((w, x) => ((c.op.startsWith('<') ? x.v > w.v : x.v < w.v) ? x : w));
    return {
      criterion: c.text,
      pass: failing.length === 0,
      status: failing.length === 0 ? 'pass' : 'fail',
      evidence: failing.length
        ? `${failing.length} of ${values.length} fail; worst ${c.metric} ${worst.v.toFixed(3)} at ${worst.u.condition}${worst.u.severity ? ` severity ${worst.u.severity}` : ''}`
        : `all ${values.length} pass; worst ${c.metric} ${worst.v.toFixed(3)} at ${worst.u.condition}${worst.u.severity ? ` severity ${worst.u.severity}` : ''}`,
    };
  });
  return {
    suite: suite.name,
    tilesPerSlide: suite.tilesPerSlide,
    clean,
    units,
    corruptionErrors,
    severitySeparation,
    mCE: corruptions.length ? mean(corruptions.map((c) => c.ce)) : null,
    relativeMCE: relDefined.length ? mean(relDefined.map((c) => c.relativeCe)) : null,
    relativeUndefined: corruptions.filter((c) => c.relativeCe === null).map((c) => c.condition),
    criteria: evaluated,
    passed: evaluated.every((c) => c.pass),
  };
}
