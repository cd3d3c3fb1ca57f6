import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MIN_SOFTNESS,
  ConfigError,
  headProbabilities,
  log,
  modelFile,
  readModelMeta,
  writeFileAtomic,
  writeModelMeta,
  type ModelMeta,
  type ProgressFactory,
} from '../core/index.ts';
import { loadSplit, openDatasetForModel, tilesOfPartition, type Partition } from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { bootstrapByPatient, writeChart, type Estimate, type VegaLiteSpec } from '../eval/index.ts';
import {
  calibration,
  calibrationFigures,
  equalMassEce,
  fitTemperature,
  negativeLogLikelihood,
  poolSlides,
  type CalibrationFigures,
  type PredictionRow,
} from '../metrics/index.ts';
import { contractOf, withContract } from '../onnx/index.ts';
import { modelOutputs } from './modelOutputs.ts';
import { openModel } from './openModel.ts';

export interface CalibrateOptions {
  split?: Partition;
  fold?: number;
  resamples?: number;
  seed?: number;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

/** Figures of one group of slides before and after scaling. */
export interface GroupFigures {
  group: string;
  slides: number;
  before: CalibrationFigures;
  after: CalibrationFigures;
}

export interface CalibrationResult {
  /** What was scaled: the logits (temperature scaling), or a pattern model's rule softness. */
  method: 'temperature' | 'softness';
  temperature: number;
  split: string;
  fold: number;
  slides: number;
  patients: number;
  before: CalibrationFigures;
  after: CalibrationFigures;
  /** Top-label ECE (equal-width and equal-mass bins) with patient-bootstrap 95% CIs. */
  intervals: { before: { ece: Estimate; eceEqualMass: Estimate }; after: { ece: Estimate; eceEqualMass: Estimate } };
  bySite: GroupFigures[];
  byScanner: GroupFigures[];
}

const BINS = 15;
/** Equal-mass bins of about 5 slides or more (one slide per bin measures nothing but |hit - confidence|). */
const massBins = (n: number) => Math.max(2, Math.min(BINS, Math.floor(n / 5)));

/**
 * Temperature scaling of a model (Guo et al. 2017) on its validation slides: the tile logits are divided
 * by the temperature T that minimises the negative log-likelihood of the slide grades as the one pooling
 * rule makes them (mean of the tiles' probabilities), so the probabilities every command reports are the
 * ones calibrated. T is stored in gradelab.json and model.onnx's metadata, every predictor applies it,
 * and calibration/ in the model folder keeps the figures before and after, overall, per site and per
 * scanner, with reliability diagrams. A tile's grade (its arg max) does not change for a softmax head; a
 * slide's can, since its probabilities are the mean of its tiles'.
 */
export async function calibrateModel(modelDir: string, dataDir: string, options: CalibrateOptions = {}): Promise<CalibrationResult> {
  const { split = 'val', fold = 0, resamples = 1000, seed = 1 } = options;
  const meta = readModelMeta(modelDir);
  const ds = await openDatasetForModel(dataDir, modelDir);
  const tiles = tilesOfPartition(ds, await loadSplit(dataDir), split, fold).filter((t) => !t.anomaly && t.grade !== undefined);
  if (!tiles.length) throw new ConfigError(`${dataDir}: no labelled tiles in the ${split} partition of fold ${fold}`);
  const model = await openModel(modelDir, options.engine);
  let outputs;
  try {
    outputs = await modelOutputs(model, modelDir, ds, tiles, { label: 'calibrate', keepFeatures: true, progress: options.progress });
  } finally {
    await model.dispose();
  }
  const { logits, k } = outputs;
  if (!logits) throw new ConfigError(`${modelDir}: the engine gave no logits to scale`);
  // A pattern model's probabilities are made by its rule: its softness is scaled, its tiles' logits not.
  const softnessAt = (t: number) => Math.max(MIN_SOFTNESS, meta.patternGrading!.softness * t);
  const slidesAt = (t: number): PredictionRow[] =>
    meta.head === 'patterns'
      ? poolSlides({ ...outputs, grading: { ...meta.patternGrading!, softness: softnessAt(t) } }, meta.classes, 'mean')
      : poolSlides({ ...outputs, probs: headProbabilities(logits, tiles.length, meta.head, k, t) }, meta.classes, 'mean');
  const labelled = (rows: PredictionRow[]) => rows.filter((r) => r.label !== undefined);
  const first = labelled(slidesAt(1));
  const patients = new Set(first.map((r) => r.patientId)).size;
  if (first.length < 10 || patients < 5)
    throw new ConfigError(
      `${dataDir}: ${first.length} labelled slides of ${patients} patients in the ${split} partition; temperature scaling needs at least 10 slides of 5 patients`,
    );
  const y = first.map((r) => r.label!);
  const probsOf = (rows: PredictionRow[]) => Float64Array.from(rows.flatMap((r) => r.probs));
  const fitted = fitTemperature((t) => negativeLogLikelihood(y, probsOf(labelled(slidesAt(t))), k));
  // The factor applied: a pattern model's softness stops at its floor.
  const temperature = meta.head === 'patterns' ? softnessAt(fitted) / meta.patternGrading!.softness : fitted;
  const after = labelled(slidesAt(temperature));
  const figures = (rows: PredictionRow[]) =>
    calibrationFigures(
      rows.map((r) => r.label!),
      probsOf(rows),
      k,
      BINS,
      massBins(rows.length),
    );
  const groups = (key: 'site' | 'scanner'): GroupFigures[] =>
    [...new Set(first.map((r) => r[key]))].sort().map((g) => {
      const pick = (rows: PredictionRow[]) => rows.filter((r) => r[key] === g);
      return { group: g, slides: pick(first).length, before: figures(pick(first)), after: figures(pick(after)) };
    });
  const ids = first.map((r) => r.patientId);
  const eceIntervals = (rows: PredictionRow[]) => {
    // One resample's labels and probabilities, gathered once for the statistic.
    const on = (idx: Int32Array, f: (ys: number[], ps: Float64Array) => number) =>
      f(
        Array.from(idx, (i) => y[i]),
        Float64Array.from(Array.from(idx).flatMap((i) => rows[i].probs)),
      );
    return {
      ece: bootstrapByPatient(ids, (idx) => on(idx, (ys, ps) => calibration(ys, ps, k, BINS).ece), { resamples, seed }),
      eceEqualMass: bootstrapByPatient(ids, (idx) => on(idx, (ys, ps) => equalMassEce(ys, ps, k, massBins(idx.length)).ece), {
        resamples,
        seed,
      }),
    };
  };
  const result: CalibrationResult = {
    method: meta.head === 'patterns' ? 'softness' : 'temperature',
    temperature,
    split,
    fold,
    slides: first.length,
    patients,
    before: figures(first),
    after: figures(after),
    intervals: { before: eceIntervals(first), after: eceIntervals(after) },
    bySite: groups('site'),
    byScanner: groups('scanner'),
  };
  const fit = { temperature, split, fold, slides: first.length, fittedAt: new Date().toISOString() };
  await storeCalibration(
    modelDir,
    meta.head === 'patterns'
      ? {
          ...meta,
          patternGrading: { ...meta.patternGrading!, softness: softnessAt(temperature) },
          calibration: { method: 'softness', ...fit },
        }
      : { ...meta, calibration: { method: 'temperature', ...fit } },
  );
  await writeCalibrationFiles(modelFile(modelDir, 'calibration'), result, { first, after, k });
  log.info(`temperature ${temperature.toFixed(3)}: slide NLL ${result.before.nll.toFixed(4)} -> ${result.after.nll.toFixed(4)}`);
  return result;
}

/** The calibrated meta into gradelab.json and, where the model has one, model.onnx's metadata (graph and weights unchanged). */
async function storeCalibration(modelDir: string, next: ModelMeta): Promise<void> {
  const onnxPath = modelFile(modelDir, 'onnx');
  // model.onnx first: a model whose gradelab.json names a temperature its ONNX file lacks refuses to open.
  if (existsSync(onnxPath)) await writeFileAtomic(onnxPath, withContract(readFileSync(onnxPath), contractOf(next), onnxPath));
  await writeModelMeta(modelDir, next);
}

function reliabilitySpec(before: PredictionRow[], after: PredictionRow[], k: number, t: number): VegaLiteSpec {
  const bins = (rows: PredictionRow[], when: string) =>
    calibration(
      rows.map((r) => r.label!),
      Float64Array.from(rows.flatMap((r) => r.probs)),
      k,
      BINS,
    )
      .bins.filter((b) => b.count > 0)
      .map((b) => ({ when, confidence: b.confidence, accuracy: b.accuracy, count: b.count }));
  return {
    title: `Reliability of slide grades before and after temperature scaling (T = ${t.toFixed(3)})`,
    width: 360,
    height: 320,
    layer: [
      // A thin line through each curve's bins, and a point per bin sized by its slides.
      ...(['line', 'point'] as const).map((type) => ({
        data: { values: [...bins(before, 'before'), ...bins(after, 'after')] },
        mark: type === 'line' ? { type, strokeWidth: 1.5 } : { type, filled: true, opacity: 0.8 },
        encoding: {
          x: { field: 'confidence', type: 'quantitative', scale: { domain: [0, 1] }, title: 'mean confidence in bin (top grade)' },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'share graded right' },
          color: { field: 'when', type: 'nominal', sort: ['before', 'after'], title: '' },
          ...(type === 'point' ? { size: { field: 'count', type: 'quantitative', title: 'slides', scale: { range: [30, 300] } } } : {}),
        },
      })),
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: '#888' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
    ],
  };
}

const ci = (e: Estimate) =>
  Number.isFinite(e.ci95[0])
    ? `${e.value.toFixed(3)} (${e.ci95[0].toFixed(3)}-${e.ci95[1].toFixed(3)})`
    : `${e.value.toFixed(3)} (no interval: ${e.note})`;

async function writeCalibrationFiles(
  dir: string,
  r: CalibrationResult,
  rows: { first: PredictionRow[]; after: PredictionRow[]; k: number },
): Promise<void> {
  await writeFileAtomic(join(dir, 'calibration.json'), `${JSON.stringify({ format: 'gradelab-calibration/1', ...r }, null, 2)}\n`);
  await writeChart(join(dir, 'reliability'), reliabilitySpec(rows.first, rows.after, rows.k, r.temperature));
  const row = (name: string, b: CalibrationFigures, a: CalibrationFigures, slides?: number) =>
    `| ${name}${slides !== undefined ? ` (${slides})` : ''} | ${b.nll.toFixed(3)} -> ${a.nll.toFixed(3)} | ${b.ece.toFixed(3)} -> ${a.ece.toFixed(3)} | ${b.eceEqualMass.toFixed(3)} -> ${a.eceEqualMass.toFixed(3)} | ${b.classwiseEce.toFixed(3)} -> ${a.classwiseEce.toFixed(3)} |`;
  const head = '| slides | NLL | ECE (equal width) | ECE (equal mass) | classwise ECE |\n|---|---|---|---|---|';
  await writeFileAtomic(
    join(dir, 'calibration.md'),
    `# ${r.method === 'softness' ? "Calibration of the pattern rule's softness" : 'Temperature scaling'}

${r.method === 'softness' ? "A pattern model's grade probabilities come from its rule: its softness was multiplied by " : ''}T = ${r.temperature.toFixed(4)}, fitted on ${r.slides} ${r.split} slides (${r.patients} patients, fold ${r.fold}) by minimising the
negative log-likelihood of the slide grades; ${BINS} equal-width bins, equal-mass bins of 5 slides or more. Top-label ECE with patient-bootstrap 95% CIs:
equal width ${ci(r.intervals.before.ece)} before, ${ci(r.intervals.after.ece)} after; equal mass
${ci(r.intervals.before.eceEqualMass)} before, ${ci(r.intervals.after.eceEqualMass)} after. These are the slides T was fitted on:
the test partition's figures come from \`gradelab eval\`, which applies T.

${head}
${row('all', r.before, r.after, r.slides)}

## Per site

${head}
${r.bySite.map((g) => row(g.group, g.before, g.after, g.slides)).join('\n')}

## Per scanner

${head}
${r.byScanner.map((g) => row(g.group, g.before, g.after, g.slides)).join('\n')}
`,
  );
}
