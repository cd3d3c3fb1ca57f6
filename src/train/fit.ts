import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildPipeline } from '../augment/index.ts';
import { ConfigError, gradeClasses, log, predictedClass, readModelMeta, sha256File, sha256Text, writeFileAtomic, writeModelMeta, type ModelMeta } from '../core/index.ts';
import { hasSplit, loadSplit, makeSplit, openTileDataset, saveSplit, spreadTilesPerSlide, TileLoader, tilesOfPartition, type TileDataset, type TileRow } from '../data/index.ts';
import { accuracy, classIndex, poolSlides, predictTiles, quadraticWeightedKappa } from '../eval/index.ts';
import { contractOf } from '../onnx/index.ts';
import type { Tracker } from '../track/index.ts';
import { selectBackend } from './backend.ts';
import type { TrainConfig } from './config.ts';
import { buildHead, headLoss, MULTITASK_OUTPUTS } from './heads.ts';
import { loadLayersModel, loadOptimizer, replaceDir, saveLayersModel, saveOptimizer } from './modelDir.ts';
import { exportOnnx } from './onnxExport.ts';
import { backbone } from './models.ts';
import { batchTensor, TfjsPredictor } from './predictor.ts';
import { scheduledLr } from './schedule.ts';

export interface FitCallbacks {
  onEpochStart?: (epoch: number, epochs: number, steps: number) => void;
  onStep?: (info: { epoch: number; step: number; loss: number; tilesPerSecond: number }) => void;
  onEpochEnd?: (info: EpochResult) => void;
}

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

interface LoopState {
  epoch: number;
  step: number;
  bestQwk: number;
  bestEpoch: number;
  sinceBest: number;
  history: EpochResult[];
  runId: string | null;
}

export interface FitResult {
  out: string;
  bestEpoch: number;
  /** Validation QWK of the kept epoch; null where it was undefined. */
  bestQwk: number | null;
  history: EpochResult[];
  backend: string;
  stoppedEarly: boolean;
}

const PIPELINE_MODULE = fileURLToPath(new URL('../augment/pipeline.ts', import.meta.url));

export async function prepareData(config: TrainConfig): Promise<{ ds: TileDataset; train: TileRow[]; val: TileRow[]; test: TileRow[] }> {
  const ds = await openTileDataset(config.data.dataset);
  if (ds.meta.task !== config.task) throw new ConfigError(`${config.data.dataset} is a ${ds.meta.task} dataset but the experiment's task is ${config.task}`);
  // A new split only where there is none: a damaged splits.json is an error, never silently replaced
  // (fold membership must not change between runs without anyone noticing).
  let split;
  if (hasSplit(config.data.dataset)) split = await loadSplit(config.data.dataset);
  else {
    split = makeSplit(ds.tiles, { folds: config.data.folds, seed: config.data.splitSeed });
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
  if (!train.length) throw new ConfigError(`${config.data.dataset}: no labelled training tiles in fold ${config.data.fold}${config.data.trainSites ? ` for sites ${config.data.trainSites.join(', ')}` : ''}`);
  if (!val.length) throw new ConfigError(`${config.data.dataset}: no labelled validation tiles in fold ${config.data.fold}`);
  return { ds, train, val, test };
}

function buildModel(config: TrainConfig, k: number, init?: tfl.LayersModel): tfl.LayersModel {
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
function registryBackbone(config: TrainConfig): string {
  const b = config.model.backbone;
  if (typeof b !== 'string') throw new ConfigError('model.backbone is a frozen ONNX encoder: its head trains on cached embeddings (gradelab train does this), not through fit()');
  return b;
}

/** The kept epoch's validation QWK, null where undefined (NaN) or no epoch ran. */
function bestQwkOf(state: LoopState): number | null {
  const v = state.history[state.bestEpoch]?.valQwk;
  return v !== undefined && v !== null && Number.isFinite(v) ? v : null;
}

const fmtQwk = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));

function isHeadLayer(name: string): boolean {
  return name.startsWith('head_');
}

/**
 * Trains a grading model: seeded data order and augmentation, AdamW or SGD with momentum, warm-up and
 * cosine decay, label smoothing, class-balanced sampling, gradient clipping, validation QWK per epoch
 * (slide level, mean-pooled tiles), best-epoch selection and early stopping. A checkpoint is written
 * atomically after every epoch; `resume` continues from it to the same result as an uninterrupted run.
 */
export async function fit(config: TrainConfig, options: { out: string; resume?: boolean; tracker?: Tracker; configText?: string; callbacks?: FitCallbacks }): Promise<FitResult> {
  const { out } = options;
  const backend = await selectBackend(config.backend);
  const { ds, train, val } = await prepareData(config);
  const classes = gradeClasses(config.task);
  const k = classes.length;
  if (config.model.head === 'multitask' && config.task !== 'breast') throw new ConfigError('model.head multitask is for the breast task');
  buildPipeline(config.augment, 'augment');

  const ckpt = join(out, 'checkpoint');
  let state: LoopState = { epoch: 0, step: 0, bestQwk: -Infinity, bestEpoch: -1, sinceBest: 0, history: [], runId: options.tracker?.runId ?? null };
  let init: tfl.LayersModel | undefined;
  if (config.model.init && !options.resume) {
    readModelMeta(config.model.init);
    init = await loadLayersModel(config.model.init);
  }
  let model: tfl.LayersModel;
  if (options.resume) {
    if (!existsSync(join(ckpt, 'state.json'))) throw new ConfigError(`${out}: no checkpoint to resume from`);
    model = await loadLayersModel(ckpt);
    state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8'));
  } else {
    model = buildModel(config, k, init);
  }

  const t = config.train;
  const makeOptimizer = () => (t.optimizer === 'adamw' ? tf.train.adam(t.lr) : tf.train.momentum(t.lr, t.momentum));
  // One optimizer per phase: unfreezing the backbone changes the variable set, and Adam's moments are
  // kept per variable position. A resumed run restores the moments of the phase it stopped in.
  let optimizer: tf.Optimizer | undefined;
  let optimizerPhase: string | undefined;
  let restoreOptimizer = !!options.resume;

  const counts = new Map<number, number>();
  for (const tile of train) counts.set(tile.grade!, (counts.get(tile.grade!) ?? 0) + 1);
  const samples = t.tilesPerEpoch ?? train.length;
  const loader = new TileLoader(ds, train, {
    batchSize: t.batchSize,
    seed: config.seed,
    dropLast: true,
    workers: t.workers,
    samples,
    transform: config.augment.length ? { module: PIPELINE_MODULE, spec: config.augment } : undefined,
    weights: t.classBalanced ? train.map((tile) => 1 / counts.get(tile.grade!)!) : undefined,
  });
  const stepsPerEpoch = loader.batchesPerEpoch();
  if (stepsPerEpoch < 1) throw new ConfigError(`fewer training tiles (${samples}) than one batch (${t.batchSize})`);
  const totalSteps = stepsPerEpoch * t.epochs;
  const warmupSteps = Math.round(t.warmupEpochs * stepsPerEpoch);
  const valTiles = spreadTilesPerSlide(val, t.valTilesPerSlide);
  const componentOf = (tile: TileRow, c: string) => (tile.labels[c] ? Number(tile.labels[c]) - 1 : -1);

  const datasetHash = ds.meta.manifestSha256;
  const configHash = sha256Text(options.configText ?? JSON.stringify(config));
  if (options.tracker && !options.resume) {
    await options.tracker.logParams(flattenParams(config));
    await options.tracker.setTags({
      'gradelab.backend': backend.name,
      'gradelab.seed': String(config.seed),
      'gradelab.config.sha256': configHash,
      'gradelab.dataset.sha256': datasetHash,
      'gradelab.out_dir': out,
      'gradelab.task': config.task,
    });
  }

  let stoppedEarly = false;
  try {
    for (let epoch = state.epoch; epoch < t.epochs; epoch++) {
      const started = Date.now();
      // Fine-tuning: the backbone stays frozen for the first epochs, then trains at a lower rate.
      const frozen = !!config.model.init && epoch < config.model.freezeEpochs;
      const lrScale = config.model.init && !frozen ? config.model.unfreezeLrScale : 1;
      for (const layer of model.layers) layer.trainable = !frozen || isHeadLayer(layer.name);
      const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const phase = frozen ? 'frozen' : 'full';
      if (phase !== optimizerPhase) {
        optimizer?.dispose();
        optimizer = makeOptimizer();
        optimizerPhase = phase;
        if (restoreOptimizer) await loadOptimizer(optimizer, ckpt);
      }
      restoreOptimizer = false;
      const opt = optimizer!;
      options.callbacks?.onEpochStart?.(epoch, t.epochs, stepsPerEpoch);
      let lossSum = 0;
      let seen = 0;
      let lr = 0;
      let s = 0;
      for await (const batch of loader.epoch(epoch)) {
        lr = scheduledLr(t.lr, state.step, warmupSteps, totalSteps) * lrScale;
        (opt as unknown as { learningRate: number }).learningRate = lr;
        const labels = Int32Array.from(batch.tiles, (tile) => classIndex(tile.grade, classes)!);
        const extra = config.model.head === 'multitask' ? MULTITASK_OUTPUTS.slice(1).map((c) => Int32Array.from(batch.tiles, (tile) => componentOf(tile, c))) : undefined;
        const loss = tf.tidy(() => {
          const x = batchTensor(batch.x, config.model.inputSize);
          const { value, grads } = tf.variableGrads(() => headLoss(model.apply(x, { training: true }) as tf.Tensor2D, config.model.head, k, labels, t.labelSmoothing, extra), vars);
          let g = grads;
          if (t.gradClip) {
            const norm = tf.sqrt(tf.addN(Object.values(grads).map((v) => tf.sum(tf.square(v)))));
            const scale = tf.minimum(1, tf.div(t.gradClip, tf.maximum(norm, 1e-12)));
            g = Object.fromEntries(Object.entries(grads).map(([n, v]) => [n, tf.mul(v, scale)]));
          }
          opt.applyGradients(g as unknown as Parameters<typeof opt.applyGradients>[0]);
          // AdamW / SGDW: weight decay decoupled from the gradient, on kernels only (not BN or biases).
          if (t.weightDecay > 0) {
            for (const v of vars) if (/kernel|depthwise/.test(v.name)) v.assign(tf.mul(v, 1 - lr * t.weightDecay));
          }
          return value.dataSync()[0];
        });
        if (!Number.isFinite(loss)) throw new Error(`training diverged at epoch ${epoch + 1}, step ${s + 1} (loss ${loss}); lower the learning rate`);
        lossSum += loss * batch.x.n;
        seen += batch.x.n;
        state.step++;
        s++;
        const tps = seen / Math.max(1e-3, (Date.now() - started) / 1000);
        options.callbacks?.onStep?.({ epoch, step: s, loss, tilesPerSecond: tps });
        if (options.tracker && state.step % t.logEvery === 0) await options.tracker.logMetrics({ 'train/loss': loss, 'train/lr': lr }, state.step);
      }
      const trainSeconds = (Date.now() - started) / 1000;

      const predictor = new TfjsPredictor(model, { head: config.model.head, classes, inputSize: config.model.inputSize });
      const vp = await predictTiles(predictor, ds, valTiles, { batchSize: 64 });
      const slides = poolSlides(vp, classes, 'mean');
      const ys = slides.map((r) => r.label!);
      const ps = slides.map((r) => r.pred);
      const tileLabels = valTiles.map((tile) => classIndex(tile.grade, classes)!);
      const tilePred = Array.from({ length: valTiles.length }, (_, i) => predictedClass(vp.probs.subarray(i * k, (i + 1) * k), config.model.head));
      const valQwk = quadraticWeightedKappa(ys, ps, k);
      const result: EpochResult = {
        epoch,
        trainLoss: lossSum / Math.max(1, seen),
        valQwk,
        valAccuracy: accuracy(ys, ps),
        valTileQwk: quadraticWeightedKappa(tileLabels, tilePred, k),
        lr,
        tilesPerSecond: seen / trainSeconds,
        best: false,
        seconds: (Date.now() - started) / 1000,
      };
      // Selection only: an undefined QWK (one class in validation) ranks below any defined one.
      const score = Number.isFinite(valQwk) ? valQwk : -2;
      if (score > state.bestQwk || t.select === 'last') {
        state.bestQwk = score;
        state.bestEpoch = epoch;
        state.sinceBest = 0;
        result.best = true;
        await replaceDir(join(out, 'best'), async (tmp) => saveLayersModel(model, tmp));
      } else {
        state.sinceBest++;
      }
      state.history.push(result);
      state.epoch = epoch + 1;
      await replaceDir(ckpt, async (tmp) => {
        await saveLayersModel(model, tmp);
        await saveOptimizer(optimizer!, tmp);
        await writeFile(join(tmp, 'state.json'), JSON.stringify(state));
      });
      options.callbacks?.onEpochEnd?.(result);
      if (options.tracker) {
        await options.tracker.logMetrics({ 'train/loss_epoch': result.trainLoss, 'val/qwk': result.valQwk, 'val/accuracy': result.valAccuracy, 'val/tile_qwk': result.valTileQwk, 'train/tiles_per_second': result.tilesPerSecond }, epoch + 1);
      }
      if (t.select === 'best' && state.sinceBest >= t.patience && epoch + 1 < t.epochs) {
        stoppedEarly = true;
        log.info(`early stop: no better validation QWK for ${t.patience} epochs (best ${fmtQwk(bestQwkOf(state))} at epoch ${state.bestEpoch + 1})`);
        break;
      }
    }
  } finally {
    await loader.close();
  }

  // The model directory: the best epoch's weights and everything needed to use them.
  const bestDir = join(out, 'best');
  const best = await loadLayersModel(bestDir);
  await saveLayersModel(best, out);
  const meta: ModelMeta = {
    format: 'gradelab-model/1',
    task: config.task,
    head: config.model.head,
    classes,
    backbone: registryBackbone(config),
    width: config.model.width,
    inputSize: config.model.inputSize,
    tileSize: ds.meta.tileSize,
    mpp: ds.meta.mpp,
    augment: config.augment,
    normaliser: null,
    seed: config.seed,
    backend: backend.name,
    runId: state.runId,
    datasetHash,
    configHash,
    bestEpoch: state.bestEpoch + 1,
    // NaN is stored as null, never as a number that looks measured.
    metrics: { ...Object.fromEntries(Object.entries(state.history[state.bestEpoch] ?? {}).filter(([, v]) => typeof v === 'number').map(([k, v]) => [k, Number.isFinite(v) ? (v as number) : null])), 'val/qwk': bestQwkOf(state) },
    trainedAt: new Date().toISOString(),
    weightsSha256: await sha256File(join(out, 'weights.bin')),
    featureDim: best.getLayer('features').outputShape[1] as number,
  };
  await writeModelMeta(out, meta);
  // Every model directory carries its ONNX form: inference runs there (src/engine).
  await writeFileAtomic(join(out, 'model.onnx'), exportOnnx(best, contractOf(meta)));
  best.dispose();
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'history.json'), JSON.stringify(state.history, null, 2));
  model.dispose();
  return { out, bestEpoch: state.bestEpoch + 1, bestQwk: bestQwkOf(state), history: state.history, backend: backend.name, stoppedEarly };
}

/** A config as MLflow params: dotted keys, arrays as JSON (within MLflow's 6000-character limit). */
export function flattenParams(obj: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) Object.assign(out, flattenParams(v, prefix ? `${prefix}.${k}` : k));
  } else {
    out[prefix] = Array.isArray(obj) ? JSON.stringify(obj).slice(0, 6000) : String(obj);
  }
  return out;
}
