import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConfigError,
  log,
  modelFile,
  readModelMeta,
  readTrainingHistory,
  scopeProblems,
  type ModelMeta,
  type ProgressFactory,
  type Task,
} from '../core/index.ts';
import {
  loadSplit,
  openDatasetForModel,
  patientsOfPartition,
  slideMppOf,
  tilesOfPartition,
  tilesOfShard,
  type Partition,
  type Shard,
  type TileDataset,
} from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { openModel } from './openModel.ts';
import {
  datasetQuality,
  DEFAULT_EXCLUSIONS,
  evaluatePredictions,
  poolSlides,
  readPredictions,
  scoreWithPrimaryDetector,
  slideGrade,
  tileRows,
  trainingCurvesSpec,
  writeChart,
  writeMetricCharts,
  writeMetricsFiles,
  writePredictions,
  type Exclusion,
  type MetricsReport,
  type PredictionRow,
} from '../eval/index.ts';
import { type TilePredictions } from '../data/index.ts';
import { hasOodBundle, loadOodBundle } from '../ood/index.ts';
import { modelOutputs } from './modelOutputs.ts';
import { writePatternAgreement } from './patternAgreement.ts';

export type SlidePooling = 'mean' | 'topk' | 'attention';

export interface PredictOptions {
  split?: Partition | 'all';
  fold?: number;
  /** One row per slide (default) or per tile. */
  level?: 'slide' | 'tile';
  /** Tiles to a slide's grade: mean, top-k, or the model's attention-MIL head. */
  pooling?: SlidePooling;
  /** The I-th of N shares of the slides (predict merge joins them). */
  shard?: Shard;
  engine?: ModelOpenOptions;
  /** Accept tiles of another size over the model's field of view. */
  resample?: boolean;
  progress?: ProgressFactory;
}

/** Each row's OOD score and flag from the model's primary detector (slide rows: the slide's aggregate). */
async function addOodScores(
  rows: PredictionRow[],
  modelDir: string,
  ds: TileDataset,
  p: TilePredictions,
  level: 'slide' | 'tile',
  classes: number[],
  bundle: ReturnType<typeof loadOodBundle>,
) {
  const ood = await scoreWithPrimaryDetector(modelDir, p, classes, () => datasetQuality(ds, p.tiles), bundle);
  if (!ood) return;
  if (level === 'tile')
    rows.forEach((r, i) => {
      r.oodScore = ood.tile[i];
      r.oodFlag = ood.tileFlags[i];
    });
  else
    for (const r of rows) {
      r.oodScore = ood.slide.get(r.slideId);
      r.oodFlag = ood.slideFlags.get(r.slideId);
    }
}

/**
 * A model's predictions of a dataset partition, in the predictions format every evaluation reads: one
 * row per slide (its grade by the one pooling rule every command uses) or per tile, with OOD scores and
 * flags where the model has detectors. Refuses data of another task, tile size or resolution.
 */
export async function predictDataset(
  modelDir: string,
  dataDir: string,
  options: PredictOptions = {},
): Promise<{ rows: PredictionRow[]; k: number; task: Task; engine: string; tiles: TilePredictions }> {
  const { split = 'test', fold = 0, level = 'slide', pooling = 'mean' } = options;
  // TensorFlow.js (the MIL head) loads only for attention pooling.
  const milModule = pooling === 'attention' ? await import('../train/index.ts') : undefined;
  const mil = milModule?.loadMil(modelDir);
  // The partition's patients are filtered in the tile index (DuckDB), so only their tiles are read; a
  // head on a frozen encoder reads the whole table, which its embedding cache is keyed by.
  const splitFile = split === 'all' ? undefined : await loadSplit(dataDir);
  const meta = readModelMeta(modelDir);
  const filter =
    splitFile && !meta.encoder && !meta.importedFeatures
      ? { patients: patientsOfPartition(splitFile, split as Partition, fold) }
      : undefined;
  const ds = await openDatasetForModel(dataDir, modelDir, { resample: options.resample, filter });
  const partition = splitFile ? tilesOfPartition(ds, splitFile, split as Partition, fold) : ds.tiles;
  const tiles = tilesOfShard(partition, options.shard);
  if (!tiles.length)
    throw new ConfigError(
      `${dataDir}: no tiles in the ${split} partition of fold ${fold}${options.shard ? ` for shard ${options.shard.index}/${options.shard.count}` : ''}`,
    );
  // A broken detector bundle is the user's to fix before any tile is scored.
  const ood = hasOodBundle(modelDir) ? loadOodBundle(modelDir) : undefined;
  const model = await openModel(modelDir, options.engine);
  try {
    const withOod = !!ood;
    const p = await modelOutputs(model, modelDir, ds, tiles, {
      label: 'predict',
      keepFeatures: withOod || !!mil,
      progress: options.progress,
    });
    const classes = model.meta.classes;
    const rows = level === 'slide' ? poolSlides(p, classes, pooling === 'attention' ? 'mean' : pooling) : tileRows(p, classes);
    if (mil && level === 'slide') {
      // Attention-MIL replaces the pooled probabilities; the rows keep their slide metadata.
      const bags = new Map(milModule!.bagsOf(p.tiles, p.features!, p.featureDim, () => undefined).map((b) => [b.slideId, b]));
      for (const r of rows) {
        // The MIL head is a softmax over classes whatever the tile head is.
        const g = slideGrade(mil.predict(bags.get(r.slideId)!).probs, 'softmax');
        r.probs = g.probs;
        r.pred = g.pred;
        r.uncertainty = g.uncertainty;
      }
    }
    if (ood) await addOodScores(rows, modelDir, ds, p, level, classes, ood);
    markScope(rows, meta, level, slideMppOf(ds));
    return { rows, k: model.k, task: model.meta.task!, engine: model.engine, tiles: p };
  } finally {
    await model.dispose();
  }
}

export interface EvaluateOptions extends Omit<PredictOptions, 'level' | 'shard'> {
  resamples?: number;
  seed?: number;
  /** Slides left out of the headline metrics and reported apart (default: anomalous and OOD-flagged). */
  exclude?: Exclusion[];
}

/**
 * Predicts a partition and writes into `out` what gradelab eval writes: predictions.csv, metrics.json
 * and metrics.md (the evaluation set stated, every metric with its interval) and the charts, with the
 * model's training curves when it has a history.
 */
export async function evaluateModel(modelDir: string, dataDir: string, out: string, options: EvaluateOptions = {}): Promise<MetricsReport> {
  const { split = 'test', fold = 0 } = options;
  // Read before any tile is scored: a damaged history.json is the user's to fix first.
  const history = existsSync(modelFile(modelDir, 'history')) ? readTrainingHistory(modelDir) : undefined;
  const { rows, k, task, tiles } = await predictDataset(modelDir, dataDir, { ...options, level: 'slide' });
  await mkdir(out, { recursive: true });
  const predPath = join(out, 'predictions.csv');
  await writePredictions(predPath, rows, k);
  const report = evaluatePredictions(readPredictions(predPath), {
    task,
    resamples: options.resamples ?? 1000,
    seed: options.seed ?? 1,
    exclude: options.exclude ?? [...DEFAULT_EXCLUSIONS],
  });
  await writeMetricsFiles(out, report, { model: modelDir, data: dataDir, split, fold });
  if (tiles.head === 'patterns') await writePatternAgreement(out, tiles, report, options, `${dataDir} (${split})`);
  await writeMetricCharts(out, report);
  if (history) {
    const h = history;
    const points = (f: (e: (typeof h)[number]) => number | null | undefined) =>
      h.flatMap((e) => (typeof f(e) === 'number' ? [{ step: e.epoch, value: f(e)! }] : []));
    await writeChart(
      join(out, 'training-curves'),
      trainingCurvesSpec({ 'train loss': points((e) => e.trainLoss), 'val QWK': points((e) => e.valQwk) }),
    );
  }
  return report;
}

/**
 * Marks every row inside or outside the model's intended use (in_scope yes/no, and scope_note saying
 * why): scored either way, never silently as if in scope, and counted in one line.
 */
function markScope(rows: PredictionRow[], meta: ModelMeta, level: 'slide' | 'tile', slideMpp: Map<string, number>): void {
  const reasons = new Map<string, number>();
  for (const r of rows) {
    const problems = scopeProblems(meta, { ...r, slideMpp: slideMpp.get(r.slideId) });
    r.extra.in_scope = problems.length ? 'no' : 'yes';
    if (problems.length) r.extra.scope_note = problems.join('; ');
    for (const p of problems) reasons.set(p, (reasons.get(p) ?? 0) + 1);
  }
  const out = rows.filter((r) => r.extra.in_scope === 'no').length;
  if (out)
    log.warn(
      `${out} of ${rows.length} ${level}s are outside the model's intended use (${[...reasons].map(([p, n]) => `${n}: ${p}`).join('; ')}): scored, and marked in_scope=no with the reason`,
    );
}
