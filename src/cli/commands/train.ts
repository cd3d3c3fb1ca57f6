import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Argv } from 'yargs';
import {
  AFFINE_HEAD_FILE,
  ConfigError,
  gradeClasses,
  log,
  sha256File,
  sha256Text,
  writeAffineHead,
  writeFileAtomic,
  writeModelMeta,
  writeTrainingHistory,
  readModelMeta,
  checkWritable,
  type EncoderSpec,
  type ModelMeta,
} from '../../core/index.ts';
import { buildTileDataset, generateSynthetic, readManifest, tilingOf } from '../../data/index.ts';
import { composeEncoderHead, OnnxEncoder } from '../../engine/index.ts';
import { trainingCurvesSpec, writeChart } from '../../eval/index.ts';
import { contractOf } from '../../onnx/index.ts';
import { FileStore, openStore, resumeRun, startRun, type Tracker } from '../../track/index.ts';
import {
  fit,
  fitHeadOnEmbeddings,
  checkExperiment,
  flattenParams,
  loadTrainConfig,
  modelRegistry,
  prepareData,
  selectBackend,
  type TrainConfig,
} from '../../train/index.ts';
import { extractEmbeddings } from '../embeddings.ts';
import { printTable } from '../output.ts';
import { createProgress } from '../progress.ts';
import { BACKENDS } from '../engineOptions.ts';

/** The model folder of a run to resume: given as the folder, or as a run id of the local file store. */
function resumeFolder(resume: string, trackingDir?: string): string {
  if (existsSync(join(resume, 'checkpoint', 'state.json'))) return resume;
  const store = openStore({ trackingDir, mustExist: true });
  if (!(store instanceof FileStore)) throw new ConfigError('--resume RUN needs the local file store, or give the model directory');
  const run = store.listRuns().find((r) => r.runId.startsWith(resume));
  if (!run?.tags['gradelab.out_dir'])
    throw new ConfigError(`--resume ${resume}: not a model directory with a checkpoint, nor a known training run`);
  return run.tags['gradelab.out_dir'];
}

/** The loop state a checkpoint holds (only its run id is needed here). */
function checkpointState(out: string): { runId?: string | null } {
  const path = join(out, 'checkpoint', 'state.json');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { runId?: string | null };
  } catch (err) {
    throw new ConfigError(`${path}: not a readable checkpoint (${(err as Error).message})`);
  }
}

/** Makes the experiment's dataset when the config describes a synthetic one that does not exist yet. */
export async function ensureDataset(config: TrainConfig): Promise<void> {
  const dir = config.data.dataset;
  if (existsSync(join(dir, 'dataset.json')) && JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')).complete) return;
  const s = config.data.synth;
  if (!s) return;
  const slidesDir = `${dir}-slides`;
  log.info(`making the synthetic dataset: ${s.slides} ${config.task} slides -> ${slidesDir}, tiles -> ${dir}`);
  const progress = createProgress('slides');
  progress.start(s.slides, 'synth');
  const { manifest } = await generateSynthetic({
    task: config.task,
    slides: s.slides,
    out: slidesDir,
    size: s.size,
    sites: s.sites,
    anomalies: s.anomalies,
    seed: s.seed,
    onSlide: () => progress.increment(),
  });
  progress.stop();
  const tl = config.data.tiling;
  await buildTileDataset(readManifest(manifest), {
    out: dir,
    tileSize: tl.tileSize,
    mpp: tl.mpp,
    stride: tl.stride,
    minTissue: tl.minTissue,
  });
}

async function writeCurves(
  out: string,
  name: string,
  history: { epoch: number; trainLoss: number; valQwk: number | null; valTileQwk: number | null }[],
): Promise<void> {
  const points = (f: (h: (typeof history)[number]) => number | null) =>
    history.flatMap((h) => (f(h) === null ? [] : [{ step: h.epoch + 1, value: f(h)! }]));
  await writeChart(
    join(out, 'training-curves'),
    trainingCurvesSpec(
      {
        'train loss': points((h) => h.trainLoss),
        'val QWK (slides)': points((h) => h.valQwk),
        'val QWK (tiles)': points((h) => h.valTileQwk),
      },
      `Training curves: ${name}`,
    ),
  );
}

/** Trains the backbone end to end (fit), with checkpoints, resume and the progress bar. */
async function trainNetwork(config: TrainConfig, out: string, tracker: Tracker, text: string, resume: boolean): Promise<string> {
  const progress = createProgress('steps', ' | epoch {epoch} | loss {loss} | {tps} tiles/s');
  let started = false;
  try {
    const result = await fit(config, {
      out,
      resume,
      tracker,
      configText: text,
      callbacks: {
        onEpochStart: (epoch, epochs, steps) => {
          if (!started) progress.start(epochs * steps, `train ${config.name}`);
          started = true;
          progress.setTotal(epochs * steps);
          progress.update({ epoch: `${epoch + 1}/${epochs}` });
        },
        onStep: (s) => progress.increment(1, { loss: s.loss.toFixed(3), tps: s.tilesPerSecond.toFixed(0) }),
        onEpochEnd: (e) =>
          log.info(
            `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(3)}, val QWK ${fmt(e.valQwk)} (slides), ${fmt(e.valTileQwk)} (tiles), ${e.tilesPerSecond.toFixed(0)} tiles/s${e.best ? ' *best' : ''}`,
          ),
      },
    });
    progress.stop();
    await writeCurves(out, config.name, result.history);
    return `best validation QWK ${fmt(result.bestQwk)} at epoch ${result.bestEpoch} (${result.backend}, ${result.replicas === 1 ? 'one thread' : `${result.replicas} replicas`})`;
  } finally {
    progress.stop();
  }
}

function parseReplicas(v: string): number | 'auto' {
  if (v === 'auto') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--replicas: expected a positive integer or auto, got "${v}"`);
  return n;
}

const fmt = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));

/**
 * A head on a frozen ONNX encoder: the encoder embeds every tile of the dataset once (cached beside it),
 * the head trains on the embeddings in seconds, and model.onnx joins encoder and head into one graph.
 */
async function trainHeadOnEncoder(config: TrainConfig, spec: EncoderSpec, out: string, tracker: Tracker, text: string): Promise<string> {
  if (config.augment.length)
    throw new ConfigError(
      `${config.name}: augment must be empty for a frozen encoder (its embeddings are computed once from the tiles as they are)`,
    );
  if (!existsSync(spec.onnx)) throw new ConfigError(`model.backbone.onnx: ${spec.onnx} not found`);
  const { ds, train, val } = await prepareData(config);
  if (Math.abs(ds.meta.mpp - spec.mpp) > 0.05 * spec.mpp)
    log.warn(`the encoder expects tiles at ${spec.mpp} um/px, ${config.data.dataset} holds tiles at ${ds.meta.mpp}`);
  const { cache, engine } = await extractEmbeddings(ds, spec);
  const backend = await selectBackend(config.backend);
  const classes = gradeClasses(config.task);
  await tracker.logParams(flattenParams(config));
  await tracker.setTags({
    'gradelab.backend': backend.name,
    'gradelab.engine': engine,
    'gradelab.seed': String(config.seed),
    'gradelab.config.sha256': sha256Text(text),
    'gradelab.dataset.sha256': ds.meta.sha256!,
    'gradelab.manifest.sha256': ds.meta.manifestSha256,
    'gradelab.encoder.sha256': cache.index.encoder.sha256,
    'gradelab.out_dir': out,
    'gradelab.task': config.task,
  });
  const result = await fitHeadOnEmbeddings(
    config,
    { tiles: train, features: cache.read(train) },
    { tiles: val, features: cache.read(val) },
    cache.dim,
    (e) => {
      log.info(
        `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(3)}, val QWK ${fmt(e.valQwk)} (slides), ${fmt(e.valTileQwk)} (tiles)${e.best ? ' *best' : ''}`,
      );
      void tracker.logMetrics(
        {
          'train/loss_epoch': e.trainLoss,
          ...(e.valQwk !== null ? { 'val/qwk': e.valQwk } : {}),
          ...(e.valTileQwk !== null ? { 'val/tile_qwk': e.valTileQwk } : {}),
        },
        e.epoch + 1,
      );
    },
  );
  await writeAffineHead(out, result.head);
  const encoder = await OnnxEncoder.open(spec.onnx, spec);
  const fixedBatch = encoder.shape.fixedBatch;
  const best = result.history[result.bestEpoch - 1];
  const meta: ModelMeta = {
    format: 'gradelab-model/1',
    task: config.task,
    head: config.model.head,
    classes,
    backbone: `onnx:${spec.onnx.split('/').pop()}`,
    width: 1,
    inputSize: spec.inputSize,
    tileSize: ds.meta.tileSize,
    mpp: ds.meta.mpp,
    tiling: tilingOf(ds.meta),
    inputNormalisation: { mean: spec.mean, std: spec.std },
    dataset: relative(out, ds.dir) || '.',
    augment: [],
    normaliser: null,
    seed: config.seed,
    backend: backend.name,
    runId: tracker.runId,
    datasetHash: ds.meta.sha256!,
    configHash: sha256Text(text),
    bestEpoch: result.bestEpoch,
    metrics: { 'val/qwk': result.bestQwk, 'val/tile_qwk': best.valTileQwk, trainLoss: best.trainLoss },
    trainedAt: new Date().toISOString(),
    weightsSha256: await sha256File(join(out, AFFINE_HEAD_FILE)),
    featureDim: cache.dim,
    encoder: { ...spec, sha256: cache.index.encoder.sha256, ...(fixedBatch ? { fixedBatch } : {}) },
  };
  await writeModelMeta(out, meta);
  try {
    await writeFileAtomic(join(out, 'model.onnx'), composeEncoderHead(spec.onnx, encoder.shape, spec, result.head, contractOf(meta)));
  } finally {
    await encoder.close();
  }
  await writeTrainingHistory(out, result.history);
  await writeCurves(out, config.name, result.history);
  return `best validation QWK ${fmt(result.bestQwk)} at epoch ${result.bestEpoch} (head on ${spec.onnx}, ${cache.dim} features)`;
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
  for (const part of ['ood', 'mil.json']) {
    if (!existsSync(join(out, part))) continue;
    await rm(join(out, part), { recursive: true, force: true });
    log.info(`removed ${join(out, part)}: it was fitted on the previous weights (refit it for the new ones)`);
  }
}

export function trainCommand(y: Argv): Argv {
  return y
    .command(
      'train',
      'Train a grading model from an experiment file (resumable, tracked)',
      (c) =>
        c
          .option('config', { type: 'string', describe: 'experiment YAML (experiments/*.yaml)' })
          .option('out', { type: 'string', describe: 'model directory (default: models/<experiment name>)' })
          .option('epochs', { type: 'number', describe: 'override train.epochs' })
          .option('backend', { choices: BACKENDS, describe: 'override the backend' })
          .option('seed', { type: 'number', describe: 'override the seed' })
          .option('replicas', {
            type: 'string',
            describe: 'override train.replicas: data-parallel replicas on wasm, a number or auto (one per core)',
          })
          .option('data', { type: 'string', describe: "train on this tile dataset instead of the experiment file's" })
          .option('set', {
            type: 'string',
            array: true,
            describe: 'override a key of the experiment file: --set train.lr=0.001 (repeatable; validated like the file)',
          })
          .option('resume', { type: 'string', describe: 'continue an interrupted run: its model directory or run id' })
          .option('force', { type: 'boolean', default: false, describe: 'replace a trained model already in --out' })
          .option('tracking-dir', { type: 'string', describe: 'MLflow file store (default ./mlruns)' }),
      async (argv) => {
        if (!argv.config && !argv.resume) throw new ConfigError('give --config, or --resume to continue a run');
        // Every override goes through the experiment file's own validation and into its saved copy (and hash).
        const overrides = [
          ...(argv.set ?? []),
          ...(argv.epochs !== undefined ? [`train.epochs=${argv.epochs}`] : []),
          ...(argv.seed !== undefined ? [`seed=${argv.seed}`] : []),
          ...(argv.backend !== undefined ? [`backend=${argv.backend}`] : []),
          ...(argv.replicas !== undefined ? [`train.replicas=${parseReplicas(argv.replicas)}`] : []),
        ];
        let out = argv.out;
        let configPath = argv.config;
        let resumeRunId: string | undefined;
        if (argv.resume) {
          if (overrides.length || argv.data)
            throw new ConfigError(
              '--resume continues a run as it was started (its config.yaml); --set, --data, --epochs, --seed, --backend and --replicas apply to new runs',
            );
          out = resumeFolder(argv.resume, argv['tracking-dir']);
          configPath = join(out, 'config.yaml');
          resumeRunId = checkpointState(out).runId ?? undefined;
        }
        const { config, text } = loadTrainConfig(configPath!, { sets: overrides, dataset: argv.data });
        checkExperiment(config, configPath!);
        out ??= join('models', config.name);
        if (!argv.resume && existsSync(join(out, 'gradelab.json')) && !argv.force)
          throw new ConfigError(
            `${out}: holds a trained model; --force replaces it (its OOD detectors and MIL head go with it), --resume continues an interrupted run, or choose another --out`,
          );
        checkWritable(out, '--out');
        let tracker: Tracker | undefined;
        if (resumeRunId && openStore({ trackingDir: argv['tracking-dir'] }) instanceof FileStore)
          tracker = await resumeRun(resumeRunId, { trackingDir: argv['tracking-dir'] });
        await mkdir(out, { recursive: true });
        if (!argv.resume) await writeFileAtomic(join(out, 'config.yaml'), text);
        await ensureDataset(config);
        tracker ??= await startRun(config.tracking.experiment, config.name, { trackingDir: argv['tracking-dir'] ?? config.tracking.dir });
        try {
          const encoder = typeof config.model.backbone === 'string' ? undefined : config.model.backbone;
          const summary = encoder
            ? await trainHeadOnEncoder(config, encoder, out, tracker, text)
            : await trainNetwork(config, out, tracker, text, !!argv.resume);
          const meta = readModelMeta(out);
          if (meta.runId !== tracker.runId) await writeModelMeta(out, { ...meta, runId: tracker.runId });
          // The selected model's own figures, beside the per-epoch curves whose last value is the last epoch's.
          await tracker.logMetrics(selectedMetrics(meta), meta.bestEpoch);
          await removeStaleParts(out);
          await tracker.setTags({
            'gradelab.weights.sha256': meta.weightsSha256 ?? '',
            'gradelab.onnx.sha256': await sha256File(join(out, 'model.onnx')),
            'gradelab.best_epoch': String(meta.bestEpoch),
          });
          for (const f of ['gradelab.json', 'history.json', 'config.yaml', 'training-curves.png'])
            await tracker.logArtifact(join(out, f), 'model');
          await tracker.end('FINISHED');
          process.stdout.write(`${summary}; model: ${out}; run ${tracker.runId}\n`);
        } catch (err) {
          await tracker.end('FAILED');
          throw err;
        }
      },
    )
    .command('models', 'List the model registry', (s) =>
      s
        .command(
          'list',
          'Backbones that gradelab train can build',
          () => undefined,
          async () => {
            printTable(
              modelRegistry.values().map(([n, d]) => [n, d.description]),
              ['model', 'architecture'],
            );
            process.stdout.write(
              '\nheads: softmax (classification), ordinal (CORAL cumulative link), multitask (breast: grade + tubules, pleomorphism, mitoses)\noptions: model.width (channel multiplier), model.inputSize (pixels), model.init (fine-tune from a model directory)\nfrozen encoders: model.backbone: {onnx: PATH, inputSize, mean, std, mpp} trains a head on cached embeddings of an ONNX encoder (a pathology foundation model)\n',
            );
          },
        )
        .demandCommand(1),
    );
}
