import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import {
  ConfigError,
  gradeClasses,
  loadJsonFile,
  log,
  MODEL_FILES,
  modelFile,
  type ModelMeta,
  predictedClass,
  readModelMeta,
  scopeOf,
  sha256File,
  siblingModule,
  writeFileAtomic,
  writeModelMeta,
  writeTrainingHistory,
} from '../core/index.ts';
import {
  hasSplit,
  loadSplit,
  makeSplit,
  openTileDataset,
  saveSplit,
  TileLoader,
  tilesOfPartition,
  tilingOf,
  mppRange,
  slideMppOf,
  type TileDataset,
  type TileRow,
  patientsOf,
} from '../data/index.ts';
import { accuracy, classIndex, poolSlides, quadraticWeightedKappa } from '../metrics/index.ts';
import { predictTiles } from '../data/index.ts';
import { contractOf } from '../onnx/index.ts';
import type { TrainConfig } from './config.ts';
import { buildHead } from './heads.ts';
import { loadLayersModel, replaceDir, saveLayersModel } from './modelDir.ts';
import { type Trainer } from './trainer.ts';
import { exportOnnx } from './onnxExport.ts';
import { backbone } from './models.ts';
import { TfjsPredictor } from './predictor.ts';
import { epochGrading, gradingOfModel, type SelectOn } from './patternSelection.ts';
import { tilePatternClass } from './patternTargets.ts';

// The stages of fit(): data, starting point, loader, validation, checkpoints and the model directory.

export interface EpochResult {
  epoch: number;
  trainLoss: number;
  valQwk: number;
  valAccuracy: number;
  valTileQwk: number;
  lr: number;
  tilesPerSecond: number;
  best: boolean;
  seconds: number;
}

/** A number JSON stored as null because it was undefined (NaN), read back as NaN. */
const nanable = z
  .number()
  .nullable()
  .transform((v) => v ?? NaN);

/** checkpoint/state.json: where an interrupted run stands (its epochs' results and the selection so far). */
const loopStateSchema = z
  .object({
    epoch: z.number().int().min(0),
    step: z.number().int().min(0),
    bestQwk: z.number().nullable(),
    bestEpoch: z.number().int(),
    sinceBest: z.number().int().min(0),
    history: z.array(
      z.object({
        epoch: z.number().int(),
        trainLoss: nanable,
        valQwk: nanable,
        valAccuracy: nanable,
        valTileQwk: nanable,
        lr: nanable,
        tilesPerSecond: nanable,
        best: z.boolean(),
        seconds: nanable,
      }),
    ),
    runId: z.string().nullable(),
  })
  .loose();

/** The loop state of a model folder's checkpoint, checked: a file cut short is one line naming it. */
export function readCheckpointState(out: string): LoopState {
  const state = loadJsonFile(modelFile(out, 'checkpointState'), loopStateSchema, 'training checkpoint');
  // JSON has no -Infinity (no epoch selected yet): it comes back as null.
  return { ...state, bestQwk: state.bestQwk ?? -Infinity };
}

export interface LoopState {
  epoch: number;
  step: number;
  bestQwk: number;
  bestEpoch: number;
  sinceBest: number;
  history: EpochResult[];
  runId: string | null;
  /** Replicas the run trains on (absent in checkpoints written before replicas existed). */
  replicas?: number;
}

const PIPELINE_MODULE = siblingModule(import.meta.url, '../augment/pipeline.ts');

export async function prepareData(config: TrainConfig): Promise<{ ds: TileDataset; train: TileRow[]; val: TileRow[]; test: TileRow[] }> {
  const ds = await openTileDataset(config.data.dataset);
  if (ds.meta.task !== config.task)
    throw new ConfigError(`${config.data.dataset} is a ${ds.meta.task} dataset but the experiment's task is ${config.task}`);
  // A new split only where there is none: a damaged splits.json is an error, never silently replaced
  // (fold membership must not change between runs without anyone noticing).
  let split;
  if (hasSplit(config.data.dataset)) split = await loadSplit(config.data.dataset);
  else {
    split = makeSplit(patientsOf(ds.tiles), { folds: config.data.folds, seed: config.data.splitSeed });
    await saveSplit(config.data.dataset, split);
    log.info(`made a ${config.data.folds}-fold patient split (seed ${config.data.splitSeed}) in ${config.data.dataset}/splits.json`);
  }
  // Anomalous slides are for out-of-distribution work, never for grading.
  const graded = (t: TileRow) => !t.anomaly && t.grade !== undefined;
  let train = tilesOfPartition(ds, split, 'train', config.data.fold).filter(graded);
  let val = tilesOfPartition(ds, split, 'val', config.data.fold).filter(graded);
  // A site-shift experiment trains and selects on the source sites only; the test partition keeps all.
  if (config.data.trainSites) {
    train = train.filter((t) => config.data.trainSites!.includes(t.site));
    val = val.filter((t) => config.data.trainSites!.includes(t.site));
  }
  const test = tilesOfPartition(ds, split, 'test', config.data.fold).filter(graded);
  if (!train.length)
    throw new ConfigError(
      `${config.data.dataset}: no labelled training tiles in fold ${config.data.fold}${config.data.trainSites ? ` for sites ${config.data.trainSites.join(', ')}` : ''}`,
    );
  if (!val.length) throw new ConfigError(`${config.data.dataset}: no labelled validation tiles in fold ${config.data.fold}`);
  return { ds, train, val, test };
}

export function buildModel(config: TrainConfig, k: number, init?: tfl.LayersModel): tfl.LayersModel {
  const size = config.model.inputSize;
  if (init) {
    // Fine-tuning: keep everything up to the features layer, put a new head on it.
    const features = init.getLayer('features').getOutputAt(0) as tfl.SymbolicTensor;
    const out = buildHead(features, config.model.head, k, config.seed);
    return tfl.model({ inputs: init.inputs, outputs: out });
  }
  const input = tfl.input({ shape: [size, size, 3], name: 'tiles' });
  const features = backbone(registryBackbone(config)).build(input, { inputSize: size, width: config.model.width, seed: config.seed });
  return tfl.model({ inputs: input, outputs: buildHead(features, config.model.head, k, config.seed) });
}

/** The registry network of an experiment that trains its backbone (a frozen encoder trains only a head). */
export function registryBackbone(config: TrainConfig): string {
  const b = config.model.backbone;
  if (typeof b !== 'string')
    throw new ConfigError(
      'model.backbone is a frozen ONNX encoder: its head trains on cached embeddings (gradelab train does this), not through fit()',
    );
  return b;
}

/** The kept epoch's validation QWK, null where undefined (NaN) or no epoch ran. */
export function bestQwkOf(state: LoopState): number | null {
  const v = state.history[state.bestEpoch]?.valQwk;
  return v !== undefined && v !== null && Number.isFinite(v) ? v : null;
}

/** A fresh model, the model to fine-tune from, or the checkpoint of an interrupted run with its loop state. */
export async function startingPoint(
  config: TrainConfig,
  k: number,
  out: string,
  resume: boolean,
  runId: string | null,
): Promise<{ model: tfl.LayersModel; state: LoopState }> {
  const ckpt = modelFile(out, 'checkpoint');
  if (resume) {
    if (!existsSync(modelFile(out, 'checkpointState'))) throw new ConfigError(`${out}: no checkpoint to resume from`);
    return { model: await loadLayersModel(ckpt), state: readCheckpointState(out) };
  }
  let init: tfl.LayersModel | undefined;
  if (config.model.init) {
    readModelMeta(config.model.init);
    init = await loadLayersModel(config.model.init);
  }
  return {
    model: buildModel(config, k, init),
    state: { epoch: 0, step: 0, bestQwk: -Infinity, bestEpoch: -1, sinceBest: 0, history: [], runId },
  };
}

/** The seeded training loader: class-balanced sampling and augmentation in its worker threads. */
export function trainingLoader(config: TrainConfig, ds: TileDataset, train: TileRow[]): TileLoader {
  const t = config.train;
  const counts = new Map<number, number>();
  for (const tile of train) counts.set(tile.grade!, (counts.get(tile.grade!) ?? 0) + 1);
  return new TileLoader(ds, train, {
    batchSize: t.batchSize,
    seed: config.seed,
    dropLast: true,
    workers: t.workers,
    samples: t.tilesPerEpoch ?? train.length,
    transform: config.augment.length ? { module: PIPELINE_MODULE, spec: config.augment } : undefined,
    weights: t.classBalanced ? train.map((tile) => 1 / counts.get(tile.grade!)!) : undefined,
  });
}

/**
 * Validation after an epoch: slide QWK from mean-pooled tile probabilities, tile QWK and accuracy. A
 * pattern model's slides are graded by the rule validation would choose for these weights (as it is
 * chosen once training ends), and its tiles are scored against their masks' patterns where they have
 * masks (what its epochs are selected on: patternSelection.ts).
 */
export async function validate(
  model: tfl.LayersModel,
  config: TrainConfig,
  ds: TileDataset,
  valTiles: TileRow[],
): Promise<Pick<EpochResult, 'valQwk' | 'valAccuracy' | 'valTileQwk'>> {
  const classes = gradeClasses(config.task);
  const k = classes.length;
  const patterns = config.model.head === 'patterns';
  const predictor = new TfjsPredictor(model, { head: config.model.head, classes, inputSize: config.model.inputSize });
  const vp = await predictTiles(predictor, ds, valTiles, { batchSize: 64 });
  if (patterns) vp.grading = epochGrading(vp, classes);
  const slides = poolSlides(vp, classes, 'mean');
  const ys = slides.map((r) => r.label!);
  const ps = slides.map((r) => r.pred);
  const tileLabels = valTiles.map((tile) => (patterns ? tilePatternClass(tile) : undefined) ?? classIndex(tile.grade, classes)!);
  const tilePred = Array.from({ length: valTiles.length }, (_, i) =>
    predictedClass(vp.probs.subarray(i * k, (i + 1) * k), config.model.head),
  );
  return {
    valQwk: quadraticWeightedKappa(ys, ps, k),
    valAccuracy: accuracy(ys, ps),
    valTileQwk: quadraticWeightedKappa(tileLabels, tilePred, k),
  };
}

/** Keeps the epoch's weights when they are the best so far, then checkpoints model, optimizer and loop state. */
export async function saveEpoch(
  out: string,
  model: tfl.LayersModel,
  trainer: Trainer,
  state: LoopState,
  result: EpochResult,
  select: 'best' | 'last',
  selectOn: SelectOn = 'slides',
): Promise<void> {
  // Selection only: an undefined QWK (one class in validation) ranks below any defined one.
  const value = selectOn === 'tiles' ? result.valTileQwk : result.valQwk;
  const score = Number.isFinite(value) ? value : -2;
  if (score > state.bestQwk || select === 'last') {
    state.bestQwk = score;
    state.bestEpoch = result.epoch;
    state.sinceBest = 0;
    result.best = true;
    await replaceDir(join(out, 'best'), async (tmp) => saveLayersModel(model, tmp));
  } else {
    state.sinceBest++;
  }
  state.history.push(result);
  state.epoch = result.epoch + 1;
  await replaceDir(modelFile(out, 'checkpoint'), async (tmp) => {
    await saveLayersModel(model, tmp);
    await trainer.saveOptimizer(tmp);
    await writeFile(join(tmp, basename(MODEL_FILES.checkpointState)), JSON.stringify(state));
  });
}

/** The scanners, sites and native slide resolutions a model was trained on (its intended use, as data). */
export function trainingScope(ds: TileDataset, tiles: readonly TileRow[]): NonNullable<ModelMeta['scope']> {
  const slideMpp = mppRange(slideMppOf(ds), new Set(tiles.map((t) => t.slideId)));
  return { ...scopeOf(tiles), ...(slideMpp ? { slideMpp } : {}) };
}

/** The tiles a model learns from and is selected on: its sites (all, or a site-shift experiment's), no anomalies. */
const trainingTiles = (ds: TileDataset, config: TrainConfig) =>
  ds.tiles.filter((t) => !t.anomaly && (!config.data.trainSites || config.data.trainSites.includes(t.site)));

/** The model directory: the best epoch's weights, gradelab.json, model.onnx and the history. */
export async function writeModelDir(
  out: string,
  config: TrainConfig,
  ds: TileDataset,
  state: LoopState,
  backend: string,
  configHash: string,
  val: TileRow[],
): Promise<void> {
  const best = await loadLayersModel(join(out, 'best'));
  await saveLayersModel(best, out);
  const patternGrading = config.model.head === 'patterns' ? await gradingOfModel(best, config, ds, val) : undefined;
  const meta: ModelMeta = {
    format: 'gradelab-model/1',
    task: config.task,
    head: config.model.head,
    classes: gradeClasses(config.task),
    backbone: registryBackbone(config),
    width: config.model.width,
    inputSize: config.model.inputSize,
    tileSize: ds.meta.tileSize,
    mpp: ds.meta.mpp,
    tiling: tilingOf(ds.meta),
    inputNormalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
    dataset: relative(out, ds.dir) || '.',
    augment: config.augment,
    normaliser: null,
    seed: config.seed,
    backend,
    runId: state.runId,
    datasetHash: ds.meta.sha256!,
    configHash,
    bestEpoch: state.bestEpoch + 1,
    // NaN is stored as null, never as a number that looks measured.
    metrics: {
      ...Object.fromEntries(
        Object.entries(state.history[state.bestEpoch] ?? {})
          .filter(([key, v]) => typeof v === 'number' && key !== 'epoch')
          .map(([k, v]) => [k, Number.isFinite(v) ? (v as number) : null]),
      ),
      'val/qwk': bestQwkOf(state),
    },
    trainedAt: new Date().toISOString(),
    weightsSha256: await sha256File(modelFile(out, 'weights')),
    featureDim: best.getLayer('features').outputShape[1] as number,
    scope: trainingScope(ds, trainingTiles(ds, config)),
    ...(patternGrading ? { patternGrading } : {}),
  };
  await writeModelMeta(out, meta);
  // Every model directory carries its ONNX form: inference runs there (src/engine).
  await writeFileAtomic(modelFile(out, 'onnx'), exportOnnx(best, contractOf(meta)));
  best.dispose();
  await writeTrainingHistory(out, state.history);
}
