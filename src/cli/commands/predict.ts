import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { EXCLUDE_OPTION } from '../options.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';
import { ConfigError, HISTORY_FILE, InputError, log, readTrainingHistory } from '../../core/index.ts';
import { loadSplit, openDatasetForModel, tilesOfPartition, type Partition, type TileDataset } from '../../data/index.ts';
import { openModel, type ModelOpenOptions } from '../../engine/index.ts';
import {
  datasetQuality,
  evaluatePredictions,
  parseExclusions,
  type Exclusion,
  fmtEstimate,
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
  type PredictionRow,
  type TilePredictions,
} from '../../eval/index.ts';
import { hasOodBundle } from '../../ood/index.ts';
import { bagsOf, loadMil } from '../../train/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { modelOutputs } from '../modelOutputs.ts';
import { parseShard, tilesOfShard, type Shard } from '../shard.ts';

interface PredictRequest {
  modelDir: string;
  data: string;
  split: Partition | 'all';
  fold: number;
  level: 'slide' | 'tile';
  pooling: 'mean' | 'topk' | 'attention';
  shard?: Shard;
  engine: ModelOpenOptions;
  /** Accept tiles of another size with the model's field of view. */
  resample?: boolean;
}

/** Each row's OOD score and flag from the model's primary detector (slide rows: the slide's aggregate). */
async function addOodScores(
  rows: PredictionRow[],
  modelDir: string,
  ds: TileDataset,
  p: TilePredictions,
  classes: number[],
  level: 'slide' | 'tile',
): Promise<void> {
  const ood = await scoreWithPrimaryDetector(modelDir, p, classes, () => datasetQuality(ds, p.tiles));
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

export async function predictRows(req: PredictRequest) {
  const mil = req.pooling === 'attention' ? loadMil(req.modelDir) : undefined;
  const ds = await openDatasetForModel(req.data, req.modelDir, { resample: req.resample });
  const model = await openModel(req.modelDir, req.engine);
  try {
    const partition = req.split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(req.data), req.split, req.fold);
    const tiles = tilesOfShard(partition, req.shard);
    if (!tiles.length)
      throw new ConfigError(
        `${req.data}: no tiles in the ${req.split} partition of fold ${req.fold}${req.shard ? ` for shard ${req.shard.index}/${req.shard.count}` : ''}`,
      );
    const withOod = hasOodBundle(req.modelDir);
    const p = await modelOutputs(model, req.modelDir, ds, tiles, { label: 'predict', keepFeatures: withOod || !!mil });
    const classes = model.meta.classes;
    const rows = req.level === 'slide' ? poolSlides(p, classes, req.pooling === 'attention' ? 'mean' : req.pooling) : tileRows(p, classes);
    if (mil && req.level === 'slide') {
      // Attention-MIL replaces the pooled probabilities; the rows keep their slide metadata.
      const bags = new Map(bagsOf(p.tiles, p.features!, p.featureDim, () => undefined).map((b) => [b.slideId, b]));
      for (const r of rows) {
        // The MIL head is a softmax over classes whatever the tile head is.
        const g = slideGrade(mil.predict(bags.get(r.slideId)!).probs, 'softmax');
        r.probs = g.probs;
        r.pred = g.pred;
        r.uncertainty = g.uncertainty;
      }
    }
    if (withOod) await addOodScores(rows, req.modelDir, ds, p, classes, req.level);
    return { rows, k: model.k, task: model.meta.task!, engine: model.engine };
  } finally {
    await model.dispose();
  }
}

/** gradelab eval's work: predict the partition, then the metrics files, charts and the printed summary. */
async function evaluateInto(
  argv: {
    model: string;
    data: string;
    split: Partition | 'all';
    fold: number;
    pooling: 'mean' | 'topk' | 'attention';
    resample: boolean;
    out: string;
    resamples: number;
    seed: number;
  } & Parameters<typeof engineOptions>[0],
  exclude: Exclusion[],
) {
  const { rows, k, task } = await predictRows({
    modelDir: argv.model,
    data: argv.data,
    split: argv.split,
    fold: argv.fold,
    level: 'slide',
    pooling: argv.pooling,
    resample: argv.resample,
    engine: engineOptions(argv),
  });
  await mkdir(argv.out, { recursive: true });
  const predPath = join(argv.out, 'predictions.csv');
  await writePredictions(predPath, rows, k);
  const report = evaluatePredictions(readPredictions(predPath), { task, resamples: argv.resamples, seed: argv.seed, exclude });
  await writeMetricsFiles(argv.out, report, { model: argv.model, data: argv.data, split: argv.split, fold: argv.fold });
  await writeMetricCharts(argv.out, report);
  if (existsSync(join(argv.model, HISTORY_FILE))) {
    const h = readTrainingHistory(argv.model);
    const points = (f: (e: (typeof h)[number]) => number | null | undefined) =>
      h.flatMap((e) => (typeof f(e) === 'number' ? [{ step: e.epoch, value: f(e)! }] : []));
    await writeChart(
      join(argv.out, 'training-curves'),
      trainingCurvesSpec({ 'train loss': points((e) => e.trainLoss), 'val QWK': points((e) => e.valQwk) }),
    );
  }
  process.stdout.write(
    `${argv.split}: QWK ${fmtEstimate(report.metrics.qwk)}, accuracy ${fmtEstimate(report.metrics.accuracy)} on ${report.n} slides (${report.patients} patients); ${resolve(argv.out)}\n`,
  );
  return report;
}

function common<T>(c: Argv<T>) {
  return engineFlags(c)
    .option('model', { type: 'string', demandOption: true, describe: 'model directory (gradelab train)' })
    .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
    .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const })
    .option('fold', { type: 'number', default: 0 })
    .option('resample', {
      type: 'boolean',
      default: false,
      describe: "accept tiles of another size that cover the model's field of view (tile size x mpp); they are resized",
    })
    .option('pooling', {
      choices: ['mean', 'topk', 'attention'] as const,
      default: 'mean' as const,
      describe: 'tile-to-slide pooling (attention: the attention-MIL head of the model directory, made by gradelab mil fit)',
    });
}

export function predictCommand(y: Argv): Argv {
  return y
    .command('predict', 'Predict grades for a dataset partition and write the predictions CSV (slide or tile level)', (s) =>
      s
        .command(
          '$0',
          'Predict a partition (or a shard of its slides) into a predictions CSV',
          (c) =>
            common(c)
              .option('out', { type: 'string', demandOption: true, describe: 'predictions CSV' })
              .option('level', { choices: ['slide', 'tile'] as const, default: 'slide' as const })
              .option('shard', { type: 'string', describe: 'predict the I-th of N shares of the slides: I/N (join with predict merge)' }),
          async (argv) => {
            const shard = parseShard(argv.shard);
            const { rows, k } = await predictRows({
              modelDir: argv.model,
              data: argv.data,
              split: argv.split,
              fold: argv.fold,
              level: argv.level,
              pooling: argv.pooling,
              shard,
              resample: argv.resample,
              engine: engineOptions(argv),
            });
            await writePredictions(argv.out, rows, k);
            log.info(`${rows.length} ${argv.level} predictions -> ${argv.out}`);
          },
        )
        .command(
          'merge <files..>',
          'Join the predictions CSVs of --shard runs into one file',
          (c) =>
            c
              .positional('files', { type: 'string', array: true, demandOption: true })
              .option('out', { type: 'string', demandOption: true }),
          async (argv) => {
            const parts = (argv.files as string[]).map((f) => readPredictions(f));
            const k = parts[0].k;
            const seen = new Map<string, string>();
            for (const p of parts) {
              if (p.k !== k) throw new InputError(`${p.path}: ${p.k} classes, but ${parts[0].path} has ${k}`);
              for (const r of p.rows) {
                const key = `${r.slideId}|${r.extra.x ?? ''}|${r.extra.y ?? ''}`;
                if (seen.has(key))
                  throw new InputError(`${p.path}: slide ${r.slideId} is also in ${seen.get(key)}; shards must not overlap`);
                seen.set(key, p.path);
              }
            }
            await writePredictions(
              argv.out,
              parts.flatMap((p) => p.rows),
              k,
            );
            log.info(`${seen.size} rows from ${parts.length} files -> ${argv.out}`);
          },
        ),
    )
    .command(
      'eval',
      'Predict a partition, then compute the full metrics with patient-bootstrap CIs and charts',
      (c) =>
        trackingFlags(common(c))
          .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
          .option('resamples', { type: 'number', default: 1000 })
          .option('seed', { type: 'number', default: 1 })
          .option('exclude', EXCLUDE_OPTION),
      async (argv) => {
        const exclude = parseExclusions(argv.exclude);
        await trackedRun(
          {
            kind: 'eval',
            name: `eval ${basename(resolve(argv.model))} on ${basename(resolve(argv.data))}`,
            modelDir: argv.model,
            trackingDir: argv['tracking-dir'],
            track: argv.track,
            params: { data: argv.data, split: argv.split, fold: argv.fold, pooling: argv.pooling, exclude: exclude.join(',') || 'none' },
          },
          async () => {
            const report = await evaluateInto(argv, exclude);
            const m = report.metrics;
            return {
              result: report,
              metrics: { qwk: m.qwk.value, accuracy: m.accuracy.value, ece: m.ece.value, slides: report.n, patients: report.patients },
              artifacts: ['metrics.json', 'metrics.md', 'predictions.csv'].map((f) => join(argv.out, f)),
            };
          },
        );
      },
    );
}
