import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkWritable,
  ConfigError,
  log,
  MODEL_FILES,
  modelFile,
  type ModelMeta,
  type ProgressFactory,
  readModelMeta,
  registryEncoderSpec,
  sha256File,
  silentProgress,
  writeFileAtomic,
  writeModelMeta,
} from '../core/index.ts';
import { buildTileDataset, readDatasetMeta, readManifest } from '../data/index.ts';
import { generateSynthetic } from '../synth/index.ts';
import { FileStore, openStore, resumeRun, startRun, type Tracker } from '../track/index.ts';
import { checkExperiment, fit, loadTrainConfig, readCheckpointState, type TrainConfig } from '../train/index.ts';
import { checkRegistryEncoder } from '../engine/index.ts';
import { trainHeadOnEncoder, trainHeadOnImported } from './trainHead.ts';
import { fmtQwk as fmt, writeTrainingCurves } from './trainingCurves.ts';

export interface TrainOptions {
  /** The model folder (default: models/<experiment name>). */
  out?: string;
  /** Overrides of the experiment file (`key.path=value`), validated like the file and saved with it. */
  sets?: string[];
  epochs?: number;
  seed?: number;
  backend?: string;
  replicas?: number | 'auto';
  /** Heads on cached embeddings: train this many seeds and report their spread (train.seeds). */
  seeds?: number;
  /** Train on this tile dataset instead of the file's. */
  data?: string;
  /** Continue an interrupted run: its model folder or run id (no overrides then). */
  resume?: string;
  /** Replace a trained model already in `out`. */
  force?: boolean;
  trackingDir?: string;
  progress?: ProgressFactory;
}

/** The model folder of a run to resume: given as the folder, or as a run id of the local file store. */
function resumeFolder(resume: string, trackingDir?: string): string {
  if (existsSync(modelFile(resume, 'checkpointState'))) return resume;
  const store = openStore({ trackingDir, mustExist: true });
  if (!(store instanceof FileStore)) throw new ConfigError('--resume RUN needs the local file store, or give the model directory');
  const run = store.listRuns().find((r) => r.runId.startsWith(resume));
  if (!run?.tags['gradelab.out_dir'])
    throw new ConfigError(`--resume ${resume}: not a model directory with a checkpoint, nor a known training run`);
  return run.tags['gradelab.out_dir'];
}

/** Makes the experiment's dataset when the config describes a synthetic one that does not exist yet. */
export async function ensureDataset(config: TrainConfig, progress: ProgressFactory = silentProgress): Promise<void> {
  const dir = config.data.dataset;
  if (existsSync(join(dir, 'dataset.json')) && readDatasetMeta(dir).complete) return;
  const s = config.data.synth;
  if (!s) return;
  const slidesDir = `${dir}-slides`;
  log.info(`making the synthetic dataset: ${s.slides} ${config.task} slides -> ${slidesDir}, tiles -> ${dir}`);
  const bar = progress('slides');
  bar.start(s.slides, 'synth');
  const { manifest } = await generateSynthetic({
    task: config.task,
    slides: s.slides,
    out: slidesDir,
    size: s.size,
    sites: s.sites,
    anomalies: s.anomalies,
    seed: s.seed,
    onSlide: () => bar.increment(),
  });
  bar.stop();
  const tl = config.data.tiling;
  await buildTileDataset(readManifest(manifest), {
    out: dir,
    tileSize: tl.tileSize,
    mpp: tl.mpp,
    stride: tl.stride,
    minTissue: tl.minTissue,
    // Synthetic slides' masks are gradelab's: a pattern head learns from them.
    ...(config.model.head === 'patterns' ? { maskScheme: 'gradelab' as const } : {}),
  });
}

/** Trains the backbone end to end (fit), with checkpoints, resume and progress. */
async function trainNetwork(
  config: TrainConfig,
  out: string,
  tracker: Tracker,
  text: string,
  resume: boolean,
  progress: ProgressFactory,
): Promise<string> {
  const bar = progress('steps', ' | epoch {epoch} | loss {loss} | {tps} tiles/s');
  let started = false;
  try {
    const result = await fit(config, {
      out,
      resume,
      tracker,
      configText: text,
      callbacks: {
        onEpochStart: (epoch, epochs, steps) => {
          if (!started) bar.start(epochs * steps, `train ${config.name}`);
          started = true;
          bar.setTotal(epochs * steps);
          bar.update({ epoch: `${epoch + 1}/${epochs}` });
        },
        onStep: (s) => bar.increment(1, { loss: s.loss.toFixed(3), tps: s.tilesPerSecond.toFixed(0) }),
        onEpochEnd: (e) =>
          log.info(
            `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(3)}, val QWK ${fmt(e.valQwk)} (slides), ${fmt(e.valTileQwk)} (tiles), ${e.tilesPerSecond.toFixed(0)} tiles/s${e.best ? ' *best' : ''}`,
          ),
      },
    });
    bar.stop();
    await writeTrainingCurves(out, config.name, result.history);
    return `best validation QWK ${fmt(result.bestQwk)} at epoch ${result.bestEpoch} (${result.backend}, ${result.replicas === 1 ? 'one thread' : `${result.replicas} replicas`})`;
  } finally {
    bar.stop();
  }
}

/** The selected epoch's validation figures as MLflow metrics (best/*), and the epoch itself (counted from 1). */
export function selectedMetrics(meta: ModelMeta): Record<string, number> {
  const m = meta.metrics;
  const pick = (...keys: string[]) => keys.map((k) => m[k]).find((v): v is number => typeof v === 'number');
  const out: Record<string, number> = { 'best/epoch': meta.bestEpoch };
  const qwk = pick('val/qwk', 'valQwk');
  const tileQwk = pick('valTileQwk', 'val/tile_qwk');
  const accuracy = pick('valAccuracy');
  if (qwk !== undefined) out['best/val_qwk'] = qwk;
  if (tileQwk !== undefined) out['best/val_tile_qwk'] = tileQwk;
  if (accuracy !== undefined) out['best/val_accuracy'] = accuracy;
  return out;
}

/**
 * Parts of a model directory fitted on the model's features (OOD detectors, an attention-MIL head) are
 * meaningless for new weights: a run that writes weights removes those a previous run left.
 */
async function removeStaleParts(out: string): Promise<void> {
  for (const part of [MODEL_FILES.ood, MODEL_FILES.mil, MODEL_FILES.calibration]) {
    if (!existsSync(join(out, part))) continue;
    await rm(join(out, part), { recursive: true, force: true });
    log.info(`removed ${join(out, part)}: it was fitted on the previous weights (refit it for the new ones)`);
  }
}

/**
 * Trains a grading model from an experiment file (or resumes one): every name and override is checked
 * before anything is written or tracked; the run is tracked; the model folder gets the selected epoch's
 * weights, gradelab.json, model.onnx, the history and curves. Returns the folder, the run and a summary.
 */
export async function trainExperiment(
  configPath: string | undefined,
  options: TrainOptions = {},
): Promise<{ out: string; runId: string; summary: string; meta: ModelMeta }> {
  const progress = options.progress ?? silentProgress;
  if (!configPath && !options.resume) throw new ConfigError('give --config, or --resume to continue a run');
  // Every override goes through the experiment file's own validation and into its saved copy (and hash).
  const overrides = [
    ...(options.sets ?? []),
    ...(options.epochs !== undefined ? [`train.epochs=${options.epochs}`] : []),
    ...(options.seed !== undefined ? [`seed=${options.seed}`] : []),
    ...(options.backend !== undefined ? [`backend=${options.backend}`] : []),
    ...(options.replicas !== undefined ? [`train.replicas=${options.replicas}`] : []),
    ...(options.seeds !== undefined ? [`train.seeds=${options.seeds}`] : []),
  ];
  let out = options.out;
  let resumeRunId: string | undefined;
  if (options.resume) {
    if (overrides.length || options.data)
      throw new ConfigError(
        '--resume continues a run as it was started (its config.yaml); --set, --data, --epochs, --seed, --seeds, --backend and --replicas apply to new runs',
      );
    out = resumeFolder(options.resume, options.trackingDir);
    configPath = modelFile(out, 'config');
    resumeRunId = readCheckpointState(out).runId ?? undefined;
  }
  const { config, text } = loadTrainConfig(configPath!, { sets: overrides, dataset: options.data });
  checkExperiment(config, configPath!);
  out ??= join('models', config.name);
  if (!options.resume && existsSync(modelFile(out, 'meta')) && !options.force)
    throw new ConfigError(
      `${out}: holds a trained model; --force replaces it (its OOD detectors and MIL head go with it), --resume continues an interrupted run, or choose another --out`,
    );
  checkWritable(out, '--out');
  await checkRegistryBackbone(config);
  let tracker: Tracker | undefined;
  if (resumeRunId && openStore({ trackingDir: options.trackingDir }) instanceof FileStore)
    tracker = await resumeRun(resumeRunId, { trackingDir: options.trackingDir });
  await mkdir(out, { recursive: true });
  if (!options.resume) {
    await writeFileAtomic(modelFile(out, 'config'), text);
    // A previous model's seed spread is not this run's (this run writes its own when train.seeds > 1).
    await rm(modelFile(out, 'seeds'), { force: true });
  }
  await ensureDataset(config, progress);
  tracker ??= await startRun(config.tracking.experiment, config.name, { trackingDir: options.trackingDir ?? config.tracking.dir });
  try {
    const b = config.model.backbone;
    const summary =
      typeof b === 'string'
        ? await trainNetwork(config, out, tracker, text, !!options.resume, progress)
        : 'features' in b
          ? await trainHeadOnImported(config, b.features, out, tracker, text)
          : 'registry' in b
            ? await trainHeadOnEncoder(config, registryEncoderSpec(b.registry, b.onnx).spec, out, tracker, text, progress)
            : await trainHeadOnEncoder(config, b, out, tracker, text, progress);
    let meta = readModelMeta(out);
    if (meta.runId !== tracker.runId) {
      meta = { ...meta, runId: tracker.runId };
      await writeModelMeta(out, meta);
    }
    // The selected model's own figures, beside the per-epoch curves whose last value is the last epoch's.
    await tracker.logMetrics(selectedMetrics(meta), meta.bestEpoch);
    await removeStaleParts(out);
    await tracker.setTags({
      'gradelab.weights.sha256': meta.weightsSha256 ?? '',
      // A head on imported features has no model.onnx: gradelab cannot compute its inputs from pixels.
      'gradelab.onnx.sha256': existsSync(modelFile(out, 'onnx')) ? await sha256File(modelFile(out, 'onnx')) : '',
      'gradelab.best_epoch': String(meta.bestEpoch),
    });
    for (const f of [MODEL_FILES.meta, MODEL_FILES.history, MODEL_FILES.config, MODEL_FILES.curves])
      await tracker.logArtifact(join(out, f), 'model');
    await tracker.end('FINISHED');
    return { out, runId: tracker.runId, summary, meta };
  } catch (err) {
    await tracker.end('FAILED');
    throw err;
  }
}

/** A registry encoder's ONNX file is checked against its entry before the model folder or a run exists. */
async function checkRegistryBackbone(config: TrainConfig): Promise<void> {
  const b = config.model.backbone;
  if (typeof b !== 'object' || !('registry' in b)) return;
  const { spec, entry } = registryEncoderSpec(b.registry, b.onnx);
  if (!existsSync(spec.onnx)) throw new ConfigError(`model.backbone.onnx: ${spec.onnx} not found`);
  await checkRegistryEncoder(spec, entry);
}
