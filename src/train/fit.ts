import { buildPipeline } from '../augment/index.ts';
import { ConfigError, gradeClasses, log, modelFile, sha256Text } from '../core/index.ts';
import { spreadTilesPerSlide, type TileRow } from '../data/index.ts';
import { classIndex } from '../metrics/index.ts';
import type { Tracker } from '../track/index.ts';
import { selectBackend } from './backend.ts';
import type { TrainConfig } from './config.ts';
import { MULTITASK_OUTPUTS } from './heads.ts';
import { ReplicaTrainer, shardSizes } from './replicas.ts';
import { LocalTrainer, replicaCount, type Trainer } from './trainer.ts';
import { scheduledLr } from './schedule.ts';
import { patternTargets, supervisionOf } from './patternTargets.ts';
import { selectionOf } from './patternSelection.ts';
import {
  bestQwkOf,
  prepareData,
  saveEpoch,
  startingPoint,
  trainingLoader,
  validate,
  writeModelDir,
  type EpochResult,
} from './fitStages.ts';

export { prepareData, type EpochResult } from './fitStages.ts';

export interface FitCallbacks {
  onEpochStart?: (epoch: number, epochs: number, steps: number) => void;
  onStep?: (info: { epoch: number; step: number; loss: number; tilesPerSecond: number }) => void;
  onEpochEnd?: (info: EpochResult) => void;
}

export interface FitResult {
  out: string;
  bestEpoch: number;
  /** Validation QWK of the kept epoch; null where it was undefined. */
  bestQwk: number | null;
  history: EpochResult[];
  backend: string;
  replicas: number;
  stoppedEarly: boolean;
}

const fmtQwk = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));

function isHeadLayer(name: string): boolean {
  return name.startsWith('head_');
}

/**
 * Trains a grading model: seeded data order and augmentation, AdamW or SGD with momentum, warm-up and
 * cosine decay, label smoothing, class-balanced sampling, gradient clipping, validation QWK per epoch
 * (slide level, mean-pooled tiles), best-epoch selection and early stopping, on one thread or on
 * data-parallel replicas (train.replicas). A checkpoint is written atomically after every epoch;
 * `resume` continues from it to the same result as an uninterrupted run.
 */
export async function fit(
  config: TrainConfig,
  options: { out: string; resume?: boolean; tracker?: Tracker; configText?: string; callbacks?: FitCallbacks; replicaWorker?: URL },
): Promise<FitResult> {
  const { out } = options;
  const backend = await selectBackend(config.backend);
  const { ds, train, val } = await prepareData(config);
  const classes = gradeClasses(config.task);
  const k = classes.length;
  if (config.model.head === 'multitask' && config.task !== 'breast') throw new ConfigError('model.head multitask is for the breast task');
  if (config.model.head === 'patterns' && config.task !== 'prostate') throw new ConfigError('model.head patterns is for the prostate task');
  buildPipeline(config.augment, 'augment');
  const { model, state } = await startingPoint(config, k, out, !!options.resume, options.tracker?.runId ?? null);
  const t = config.train;
  // A resumed run keeps the replica count it started with: shards decide the numbers.
  const replicas = state.replicas ?? replicaCount(t.replicas, backend.name, t.batchSize);
  state.replicas = replicas;

  const loader = trainingLoader(config, ds, train);
  const stepsPerEpoch = loader.batchesPerEpoch();
  if (stepsPerEpoch < 1) {
    await loader.close();
    throw new ConfigError(`fewer training tiles (${t.tilesPerEpoch ?? train.length}) than one batch (${t.batchSize})`);
  }
  const totalSteps = stepsPerEpoch * t.epochs;
  const warmupSteps = Math.round(t.warmupEpochs * stepsPerEpoch);
  const valTiles = spreadTilesPerSlide(val, t.valTilesPerSlide);
  const selectOn = selectionOf(config, valTiles);
  if (config.model.head === 'patterns' && !train.some((tile) => supervisionOf(tile) !== 'label'))
    log.warn(
      `no training tile of ${config.data.dataset} has a label mask: the pattern head learns from slide labels only (tile with --mask-scheme, or PANDA's train_label_masks)`,
    );
  const componentOf = (tile: TileRow, c: string) => (tile.labels[c] ? Number(tile.labels[c]) - 1 : -1);

  const configHash = sha256Text(options.configText ?? JSON.stringify(config));
  let trainer: Trainer | undefined;
  let stoppedEarly = false;
  try {
    trainer =
      replicas > 1 ? await ReplicaTrainer.start(model, config, k, replicas, options.replicaWorker) : new LocalTrainer(model, config, k);
    log.info(
      `training on ${trainer.description}${replicas > 1 ? ` (batch ${t.batchSize} split ${shardSizes(t.batchSize, replicas).join('+')})` : ''}`,
    );
    if (options.tracker && !options.resume) {
      await options.tracker.logParams(flattenParams(config));
      await options.tracker.setTags({
        'gradelab.backend': backend.name,
        'gradelab.replicas': String(replicas),
        'gradelab.seed': String(config.seed),
        'gradelab.config.sha256': configHash,
        'gradelab.dataset.sha256': ds.meta.sha256!,
        'gradelab.manifest.sha256': ds.meta.manifestSha256,
        'gradelab.out_dir': out,
        'gradelab.task': config.task,
      });
    }
    let restore = options.resume ? modelFile(out, 'checkpoint') : undefined;
    for (let epoch = state.epoch; epoch < t.epochs; epoch++) {
      const started = Date.now();
      // Fine-tuning: the backbone stays frozen for the first epochs, then trains at a lower rate.
      const frozen = !!config.model.init && epoch < config.model.freezeEpochs;
      const lrScale = config.model.init && !frozen ? config.model.unfreezeLrScale : 1;
      await trainer.setPhase(frozen ? 'frozen' : 'full', (name) => !frozen || isHeadLayer(name), restore);
      restore = undefined;
      options.callbacks?.onEpochStart?.(epoch, t.epochs, stepsPerEpoch);
      let lossSum = 0;
      let seen = 0;
      let lr = 0;
      let s = 0;
      for await (const batch of loader.epoch(epoch)) {
        lr = scheduledLr(t.lr, state.step, warmupSteps, totalSteps) * lrScale;
        const labels = Int32Array.from(batch.tiles, (tile) => classIndex(tile.grade, classes)!);
        const extra =
          config.model.head === 'multitask'
            ? MULTITASK_OUTPUTS.slice(1).map((c) => Int32Array.from(batch.tiles, (tile) => componentOf(tile, c)))
            : undefined;
        const patterns = config.model.head === 'patterns' ? patternTargets(batch.tiles) : undefined;
        const loss = await trainer.step({ x: batch.x, labels, extra, patterns }, lr);
        if (!Number.isFinite(loss))
          throw new ConfigError(`training diverged at epoch ${epoch + 1}, step ${s + 1} (loss ${loss}); lower the learning rate`);
        lossSum += loss * batch.x.n;
        seen += batch.x.n;
        state.step++;
        s++;
        options.callbacks?.onStep?.({ epoch, step: s, loss, tilesPerSecond: seen / Math.max(1e-3, (Date.now() - started) / 1000) });
        if (options.tracker && state.step % t.logEvery === 0)
          await options.tracker.logMetrics({ 'train/loss': loss, 'train/lr': lr }, state.step);
      }
      const trainSeconds = (Date.now() - started) / 1000;
      await trainer.sync(model);
      const result: EpochResult = {
        epoch,
        trainLoss: lossSum / Math.max(1, seen),
        ...(await validate(model, config, ds, valTiles)),
        lr,
        tilesPerSecond: seen / trainSeconds,
        best: false,
        seconds: 0,
      };
      result.seconds = (Date.now() - started) / 1000;
      await saveEpoch(out, model, trainer, state, result, t.select, selectOn);
      options.callbacks?.onEpochEnd?.(result);
      if (options.tracker) {
        await options.tracker.logMetrics(
          {
            'train/loss_epoch': result.trainLoss,
            'val/qwk': result.valQwk,
            'val/accuracy': result.valAccuracy,
            'val/tile_qwk': result.valTileQwk,
            'train/tiles_per_second': result.tilesPerSecond,
          },
          epoch + 1,
        );
      }
      if (t.select === 'best' && state.sinceBest >= t.patience && epoch + 1 < t.epochs) {
        stoppedEarly = true;
        log.info(
          `early stop: no better validation ${selectOn === 'tiles' ? 'tile QWK against the masks' : 'QWK'} for ${t.patience} epochs (best at epoch ${state.bestEpoch + 1}, slide QWK ${fmtQwk(bestQwkOf(state))})`,
        );
        break;
      }
    }
  } finally {
    await trainer?.close();
    await loader.close();
  }
  await writeModelDir(out, config, ds, state, backend.name, configHash, spreadTilesPerSlide(val, Math.max(64, t.valTilesPerSlide)));
  model.dispose();
  return {
    out,
    bestEpoch: state.bestEpoch + 1,
    bestQwk: bestQwkOf(state),
    history: state.history,
    backend: backend.name,
    replicas,
    stoppedEarly,
  };
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
