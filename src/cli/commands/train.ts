import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, log } from '../../core/index.ts';
import { buildTileDataset, generateSynthetic, readManifest } from '../../data/index.ts';
import { evaluatePredictions, fmtEstimate, readPredictions, trainingCurvesSpec, writeChart, writeMetricCharts, writeMetricsFiles, writePredictions } from '../../eval/index.ts';
import { FileStore, openStore, resumeRun, sha256File, startRun, type Tracker } from '../../track/index.ts';
import { bagsOf, fit, loadMil, loadTrainConfig, modelRegistry, ModelPredictor, poolSlides, predictTiles, prepareData, readModelMeta, selectBackend, tileRows, type TrainConfig } from '../../train/index.ts';
import { loadSplit, openTileDataset, tilesOfPartition, type Partition } from '../../data/index.ts';
import { createProgress } from '../progress.ts';
import { aggregateScores, hasOodBundle, loadOodBundle } from '../../ood/index.ts';
import { featureSet } from './ood.ts';
import { printTable } from '../output.ts';

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
  const { manifest } = await generateSynthetic({ task: config.task, slides: s.slides, out: slidesDir, size: s.size, sites: s.sites, anomalies: s.anomalies, seed: s.seed, onSlide: () => progress.increment() });
  progress.stop();
  const tl = config.data.tiling;
  await buildTileDataset(readManifest(manifest), { out: dir, tileSize: tl.tileSize, mpp: tl.mpp, stride: tl.stride, minTissue: tl.minTissue });
}

async function weightsHash(dir: string): Promise<string> {
  return sha256File(join(dir, 'weights.bin'));
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
          .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'] as const, describe: 'override the backend' })
          .option('seed', { type: 'number', describe: 'override the seed' })
          .option('resume', { type: 'string', describe: 'continue an interrupted run: its model directory or run id' })
          .option('tracking-dir', { type: 'string', describe: 'MLflow file store (default ./mlruns)' })
          .check((a) => {
            if (!a.config && !a.resume) throw new Error('give --config, or --resume to continue a run');
            return true;
          }),
      async (argv) => {
        let out = argv.out;
        let configPath = argv.config;
        let tracker: Tracker | undefined;
        if (argv.resume) {
          if (existsSync(join(argv.resume, 'checkpoint', 'state.json'))) out = argv.resume;
          else {
            const store = openStore({ trackingDir: argv['tracking-dir'] });
            if (!(store instanceof FileStore)) throw new ConfigError('--resume RUN needs the local file store, or give the model directory');
            const run = store.listRuns().find((r) => r.runId.startsWith(argv.resume!));
            if (!run?.tags['gradelab.out_dir']) throw new ConfigError(`--resume ${argv.resume}: not a model directory with a checkpoint, nor a known training run`);
            out = run.tags['gradelab.out_dir'];
          }
          const state = JSON.parse(readFileSync(join(out!, 'checkpoint', 'state.json'), 'utf8'));
          configPath = join(out!, 'config.yaml');
          if (state.runId && openStore({ trackingDir: argv['tracking-dir'] }) instanceof FileStore) tracker = await resumeRun(state.runId, { trackingDir: argv['tracking-dir'] });
        }
        const { config: loaded, text } = loadTrainConfig(configPath!);
        const config: TrainConfig = {
          ...loaded,
          seed: argv.seed ?? loaded.seed,
          backend: argv.backend ?? loaded.backend,
          train: { ...loaded.train, epochs: argv.epochs ?? loaded.train.epochs },
        };
        out ??= join('models', config.name);
        await mkdir(out, { recursive: true });
        if (!argv.resume) {
          const { writeFileAtomic } = await import('../../core/index.ts');
          await writeFileAtomic(join(out, 'config.yaml'), text);
        }
        await ensureDataset(config);
        tracker ??= await startRun(config.tracking.experiment, config.name, { trackingDir: argv['tracking-dir'] ?? config.tracking.dir });
        const progress = createProgress('steps', ' | epoch {epoch} | loss {loss} | {tps} tiles/s');
        let started = false;
        try {
          const result = await fit(config, {
            out,
            resume: !!argv.resume,
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
              onEpochEnd: (e) => log.info(`epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(3)}, val QWK ${e.valQwk.toFixed(3)} (slides), ${e.valTileQwk.toFixed(3)} (tiles), ${e.tilesPerSecond.toFixed(0)} tiles/s${e.best ? ' *best' : ''}`),
            },
          });
          progress.stop();
          await tracker.setTags({ 'gradelab.weights.sha256': await weightsHash(out), 'gradelab.best_epoch': String(result.bestEpoch) });
          const { writeFileAtomic } = await import('../../core/index.ts');
          const meta = readModelMeta(out);
          meta.runId = tracker.runId;
          await writeFileAtomic(join(out, 'gradelab.json'), JSON.stringify(meta, null, 2));
          await writeChart(join(out, 'training-curves'), trainingCurvesSpec({
            'train loss': result.history.map((h) => ({ step: h.epoch + 1, value: h.trainLoss })),
            'val QWK (slides)': result.history.map((h) => ({ step: h.epoch + 1, value: h.valQwk })),
            'val QWK (tiles)': result.history.map((h) => ({ step: h.epoch + 1, value: h.valTileQwk })),
          }, `Training curves: ${config.name}`));
          for (const f of ['gradelab.json', 'history.json', 'config.yaml', 'training-curves.png']) await tracker.logArtifact(join(out, f), 'model');
          await tracker.end('FINISHED');
          process.stdout.write(`best validation QWK ${result.bestQwk.toFixed(3)} at epoch ${result.bestEpoch} (${result.backend}); model: ${out}; run ${tracker.runId}\n`);
        } catch (err) {
          progress.stop();
          await tracker.end('FAILED');
          throw err;
        }
      },
    )
    .command('models', 'List the model registry', (s) =>
      s.command('list', 'Backbones that gradelab train can build', () => undefined, async () => {
        printTable(modelRegistry.values().map(([n, d]) => [n, d.description]), ['model', 'architecture']);
        process.stdout.write('\nheads: softmax (classification), ordinal (CORAL cumulative link), multitask (breast: grade + tubules, pleomorphism, mitoses)\noptions: model.width (channel multiplier), model.inputSize (pixels), model.init (fine-tune from a model directory)\n');
      }).demandCommand(1),
    );
}

async function predictRows(modelDir: string, data: string, split: Partition | 'all', fold: number, level: 'slide' | 'tile', pooling: 'mean' | 'topk' | 'attention', backend: string) {
  await selectBackend(backend as 'auto');
  const model = await ModelPredictor.load(modelDir);
  const ds = await openTileDataset(data);
  if (ds.meta.task !== model.meta.task) throw new ConfigError(`${data} is a ${ds.meta.task} dataset but the model grades ${model.meta.task}`);
  const tiles = split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(data), split, fold);
  if (!tiles.length) throw new ConfigError(`${data}: no tiles in the ${split} partition of fold ${fold}`);
  const progress = createProgress('tiles');
  progress.start(tiles.length, 'predict');
  let last = 0;
  const withOod = hasOodBundle(modelDir);
  const mil = pooling === 'attention' ? loadMil(modelDir) : undefined;
  const p = await predictTiles(model, ds, tiles, { batchSize: 64, keepFeatures: withOod || !!mil, onBatch: (done) => { progress.increment(done - last); last = done; } });
  progress.stop();
  const rows = level === 'slide' ? poolSlides(p, model.meta.classes, pooling === 'attention' ? 'mean' : pooling) : tileRows(p, model.meta.classes);
  if (mil && level === 'slide') {
    // Attention-MIL replaces the pooled probabilities; the rows keep their slide metadata.
    const bags = new Map(bagsOf(p.tiles, p.features!, p.featureDim, () => undefined).map((b) => [b.slideId, b]));
    for (const r of rows) {
      const probs = mil.predict(bags.get(r.slideId)!).probs;
      r.probs = probs;
      r.pred = probs.indexOf(Math.max(...probs));
      r.uncertainty = 1 - Math.max(...probs);
    }
  }
  if (withOod) {
    // The model directory carries a fitted OOD detector: every row gets its score and flag.
    const { bundle, detectors } = loadOodBundle(modelDir);
    const stored = bundle.detectors.find((d) => d.name === bundle.primary)!;
    const scores = detectors.get(bundle.primary)!.score(featureSet(p, model.meta.classes));
    if (level === 'slide') {
      const slide = aggregateScores(scores, p.tiles.map((t) => t.slideId), 'topk', { k: bundle.aggregation.k });
      for (const r of rows) {
        r.oodScore = slide.get(r.slideId);
        r.oodFlag = (r.oodScore ?? 0) > stored.slideThreshold;
      }
    } else {
      rows.forEach((r, i) => {
        r.oodScore = scores[i];
        r.oodFlag = scores[i] > stored.threshold;
      });
    }
  }
  return { rows, k: model.k, task: model.meta.task };
}

export function predictCommand(y: Argv): Argv {
  const common = (c: Argv) =>
    c
      .option('model', { type: 'string', demandOption: true, describe: 'model directory (gradelab train)' })
      .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
      .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const })
      .option('fold', { type: 'number', default: 0 })
      .option('pooling', { choices: ['mean', 'topk', 'attention'] as const, default: 'mean' as const, describe: 'tile-to-slide pooling (attention: the attention-MIL head of the model directory, made by gradelab mil fit)' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'] as const, default: 'auto' as const });
  return y
    .command(
      'predict',
      'Predict grades for a dataset partition and write the predictions CSV (slide or tile level)',
      (c) => common(c).option('out', { type: 'string', demandOption: true, describe: 'predictions CSV' }).option('level', { choices: ['slide', 'tile'] as const, default: 'slide' as const }),
      async (argv) => {
        const { rows, k } = await predictRows(argv.model, argv.data, argv.split, argv.fold, argv.level, argv.pooling, argv.backend);
        await writePredictions(argv.out, rows, k);
        log.info(`${rows.length} ${argv.level} predictions -> ${argv.out}`);
      },
    )
    .command(
      'eval',
      'Predict a partition, then compute the full metrics with patient-bootstrap CIs and charts',
      (c) => common(c).option('out', { type: 'string', demandOption: true, describe: 'output folder' }).option('resamples', { type: 'number', default: 1000 }).option('seed', { type: 'number', default: 1 }),
      async (argv) => {
        const { rows, k, task } = await predictRows(argv.model, argv.data, argv.split, argv.fold, 'slide', argv.pooling, argv.backend);
        await mkdir(argv.out, { recursive: true });
        const predPath = join(argv.out, 'predictions.csv');
        await writePredictions(predPath, rows, k);
        const report = evaluatePredictions(readPredictions(predPath), { task, resamples: argv.resamples, seed: argv.seed });
        await writeMetricsFiles(argv.out, report, `${argv.model} on ${argv.data} (${argv.split})`);
        await writeMetricCharts(argv.out, report);
        const historyPath = join(argv.model, 'history.json');
        if (existsSync(historyPath)) {
          const h = JSON.parse(readFileSync(historyPath, 'utf8')) as { epoch: number; trainLoss: number; valQwk: number }[];
          await writeChart(join(argv.out, 'training-curves'), trainingCurvesSpec({ 'train loss': h.map((e) => ({ step: e.epoch + 1, value: e.trainLoss })), 'val QWK': h.map((e) => ({ step: e.epoch + 1, value: e.valQwk })) }));
        }
        process.stdout.write(`${argv.split}: QWK ${fmtEstimate(report.metrics.qwk)}, accuracy ${fmtEstimate(report.metrics.accuracy)} on ${report.n} slides (${report.patients} patients); ${resolve(argv.out)}\n`);
      },
    );
}

export { prepareData };
