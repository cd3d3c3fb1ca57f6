import { mkdir } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, createRng, log, shuffled, writeFileAtomic, type ModelPredictor } from '../../core/index.ts';
import { loadSplit, NEAR_OOD, openDatasetForModel, tilesOfPartition, type TileDataset, type TileRow } from '../../data/index.ts';
import { openModel } from '../../engine/index.ts';
import {
  accuracy,
  bestDetectorPerGroup,
  classIndex,
  datasetQuality,
  featureSet,
  fmtEstimate,
  needsQuality,
  oodStudy,
  perDetectorBins,
  poolSlides,
  quadraticWeightedKappa,
  rocCurve,
  writeChart,
  type OodMetrics,
  type OodStudy,
  type TilePredictions,
} from '../../eval/index.ts';
import {
  aggregateScores,
  calibrateThreshold,
  createDetector,
  DEFAULT_DETECTORS,
  detectorRegistry,
  loadOodBundle,
  QUALITY_DETECTORS,
  saveOodBundle,
  type FeatureSet,
} from '../../ood/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { modelOutputs } from '../modelOutputs.ts';
import { printTable } from '../output.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';

const TOPK = 5;

/** A model's features and logits of tiles, with the tiles' quality features when a qc-* detector needs them. */
async function inputs(
  model: ModelPredictor,
  modelDir: string,
  ds: TileDataset,
  tiles: TileRow[],
  label: string,
  quality: boolean,
): Promise<{ p: TilePredictions; set: FeatureSet }> {
  const p = await modelOutputs(model, modelDir, ds, tiles, { label, keepFeatures: true });
  const q = quality ? await datasetQuality(ds, tiles) : undefined;
  return { p, set: featureSet(p, model.meta.classes, q) };
}

function sample(tiles: TileRow[], max: number, key: string): TileRow[] {
  return tiles.length <= max ? tiles : shuffled(tiles, createRng(key)).slice(0, max);
}

/** Near-OOD: tumour look-alikes; far-OOD: artifacts and other tissue (synthetic anomaly names). */
export function oodGroup(anomaly: string): 'near' | 'far' {
  return (NEAR_OOD as readonly string[]).includes(anomaly) ? 'near' : 'far';
}

async function writeStudy(
  out: string,
  header: string,
  study: OodStudy,
  grading: string,
  charts: { hist: Record<string, unknown>[]; rocs: Record<string, unknown>[] },
): Promise<string[][]> {
  const f = (m: OodMetrics | null | undefined, key: 'auroc' | 'fpr95' = 'auroc') => (m ? fmtEstimate(m[key]) : '-');
  const names = Object.keys(study.detectors);
  const rows = names.map((n) => {
    const r = study.detectors[n];
    return [
      n,
      f(r.all.tile),
      f(r.all.tile, 'fpr95'),
      f(r.all.slide),
      f(r.groups.near?.slide),
      f(r.groups.far?.slide),
      f(r.groups.far?.tile),
    ];
  });
  const head = [
    'detector',
    'AUROC (tiles)',
    'FPR@95TPR (tiles)',
    'AUROC (slides)',
    'near-OOD AUROC (slides)',
    'far-OOD AUROC (slides)',
    'far-OOD AUROC (tiles)',
  ];
  const summary = ['near', 'far', 'unlabelled'];
  const groups = [...new Set(names.flatMap((n) => Object.keys(study.detectors[n].groups)))].sort(
    (a, b) => summary.indexOf(a) - summary.indexOf(b) || a.localeCompare(b),
  );
  const best = bestDetectorPerGroup(study);
  const families = groups.map((g) => [
    g,
    ...names.map((n) => {
      const m = study.detectors[n].groups[g];
      const v = m?.slide.auroc.value;
      return v === undefined || !Number.isFinite(v)
        ? '-'
        : `${best[g]?.detector === n ? '**' : ''}${v.toFixed(2)}${best[g]?.detector === n ? '**' : ''}`;
    }),
  ]);
  const truth =
    study.tileTruth === 'mask'
      ? `Tile level: a tile is OOD when its label mask marks at least ${study.tileThreshold * 100}% of it anomalous (${study.oodTilesUsed} tiles); ${study.tilesExcluded} tiles of OOD slides below that are left out.`
      : 'Tile level: no label masks, so every tile of an OOD slide counts as OOD (anomalies cover part of a slide: this understates tile-level detection).';
  const md = [
    header,
    '',
    truth,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Which detector catches which anomaly',
    '',
    "Slide-level AUROC per anomaly class (best in bold). qc-* detectors read the tiles' pixels (focus, ink, folds and bubbles, stain); the others read the model's features and logits.",
    '',
    `| anomaly | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---').join('|')}|`,
    ...families.map((r) => `| ${r.join(' | ')} |`),
    '',
    grading,
    '',
  ];
  await writeFileAtomic(join(out, 'ood.md'), `${md.join('\n')}\n`);
  // Each detector on its own scale (energy is near -10, qc-all in the millions): bins per detector,
  // between its 1st and 99th percentile, the rest counted in the end bins.
  await writeChart(join(out, 'ood-histograms'), {
    title: 'OOD scores: in-distribution vs OOD tiles (each detector on its own axis)',
    data: { values: perDetectorBins(charts.hist as { detector: string; set: string; score: number }[], 30) },
    mark: { type: 'bar', opacity: 0.6 },
    encoding: {
      x: { field: 'start', type: 'quantitative', bin: 'binned', title: 'score' },
      x2: { field: 'end' },
      y: { field: 'count', type: 'quantitative', stack: null, title: 'tiles' },
      color: { field: 'set', type: 'nominal' },
      facet: { field: 'detector', type: 'nominal', columns: 4 },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    width: 180,
    height: 110,
  });
  await writeChart(join(out, 'ood-roc'), {
    title: 'ROC per detector (tiles; OOD positive)',
    data: { values: charts.rocs },
    mark: { type: 'line', interpolate: 'step-after' },
    width: 320,
    height: 320,
    encoding: {
      x: { field: 'fpr', type: 'quantitative', title: 'false positive rate (ID flagged)' },
      y: { field: 'tpr', type: 'quantitative', title: 'true positive rate (OOD caught)' },
      color: { field: 'detector', type: 'nominal' },
    },
  });
  return [head, ...rows];
}

export function oodCommand(y: Argv): Argv {
  return y.command('ood', "Out-of-distribution detectors: fit on a model's features (and tiles' quality), evaluate near and far", (s) =>
    s
      .command(
        'fit',
        'Fit detectors on in-distribution training tiles, calibrate thresholds on validation tiles, save them in the model directory',
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('data', { type: 'string', demandOption: true, describe: 'the in-distribution tile dataset (with its split)' })
            .option('method', {
              type: 'string',
              array: true,
              describe: `detectors (default: all): ${[...DEFAULT_DETECTORS, ...QUALITY_DETECTORS].join(', ')}`,
            })
            .option('fold', { type: 'number', default: 0 })
            .option('accept', { type: 'number', default: 0.95, describe: 'share of in-distribution validation tiles to accept' })
            .option('max-tiles', { type: 'number', default: 4000, describe: 'training tiles used (seeded sample)' })
            .option('primary', {
              type: 'string',
              describe: 'the detector predict, robustness and audit report (default: qc-all when fitted, else the first)',
            }),
        async (argv) => {
          if (!(argv.accept > 0 && argv.accept < 1)) throw new ConfigError(`--accept must be between 0 and 1, got ${argv.accept}`);
          const methods = argv.method ?? [...DEFAULT_DETECTORS, ...QUALITY_DETECTORS];
          for (const m of methods)
            if (!detectorRegistry.has(m)) throw new ConfigError(`unknown OOD method "${m}"; known: ${detectorRegistry.names().join(', ')}`);
          const primary = argv.primary ?? (methods.includes('qc-all') ? 'qc-all' : methods[0]);
          if (!methods.includes(primary))
            throw new ConfigError(`--primary ${primary} is not among the fitted methods (${methods.join(', ')})`);
          const ds = await openDatasetForModel(argv.data, argv.model);
          const split = await loadSplit(argv.data);
          const id = (t: TileRow) => !t.anomaly && t.grade !== undefined;
          const train = sample(tilesOfPartition(ds, split, 'train', argv.fold).filter(id), argv['max-tiles'], 'ood-train');
          const val = tilesOfPartition(ds, split, 'val', argv.fold).filter(id);
          if (!train.length || !val.length)
            throw new ConfigError(`${argv.data}: needs in-distribution training and validation tiles in fold ${argv.fold}`);
          const model = await openModel(argv.model, engineOptions(argv));
          const quality = needsQuality(methods);
          const trainSet = (await inputs(model, argv.model, ds, train, 'embed train', quality)).set;
          const valSet = (await inputs(model, argv.model, ds, val, 'embed val', quality)).set;
          await model.dispose();
          const fitted = [];
          for (const m of methods) {
            const t0 = Date.now();
            const det = createDetector(m);
            det.fit(trainSet);
            const scores = det.score(valSet);
            const slide = aggregateScores(
              scores,
              val.map((t) => t.slideId),
              'topk',
              { k: TOPK },
            );
            fitted.push({
              detector: det,
              params: {},
              threshold: calibrateThreshold(scores, argv.accept),
              slideThreshold: calibrateThreshold([...slide.values()], argv.accept),
            });
            log.info(`fitted ${m} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          }
          await saveOodBundle(
            argv.model,
            { format: 'gradelab-ood/1', accept: argv.accept, primary, aggregation: { method: 'topk', k: TOPK } },
            fitted,
          );
          process.stdout.write(
            `fitted ${methods.length} detectors (primary ${primary}) on ${train.length} tiles (d = ${trainSet.d}), thresholds accept ${(argv.accept * 100).toFixed(0)}% of ${val.length} validation tiles; saved in ${join(argv.model, 'ood')}\n`,
          );
        },
      )
      .command(
        'eval',
        'AUROC, FPR@95TPR, AUPR-In/Out per detector, per anomaly class, near and far, tile (mask truth) and slide level, with CIs',
        (c) =>
          trackingFlags(engineFlags(c))
            .option('model', { type: 'string', demandOption: true })
            .option('id', { type: 'string', demandOption: true, describe: 'in-distribution dataset (its test partition)' })
            .option('ood', {
              type: 'string',
              demandOption: true,
              describe: 'dataset whose anomalous tiles (or all, if none is marked) are OOD',
            })
            .option('out', { type: 'string', demandOption: true })
            .option('id-split', {
              choices: ['train', 'val', 'test', 'all'] as const,
              default: 'test' as const,
              describe: 'partition of --id that is in-distribution (all: a held-out test set)',
            })
            .option('fold', { type: 'number', default: 0 })
            .option('tile-threshold', {
              type: 'number',
              default: 0.5,
              describe: 'a tile is OOD when its label mask marks at least this share anomalous',
            })
            .option('resamples', { type: 'number', default: 500 })
            .option('seed', { type: 'number', default: 1 }),
        async (argv) =>
          trackedRun(
            {
              kind: 'ood eval',
              name: `ood eval ${basename(resolve(argv.model))}`,
              modelDir: argv.model,
              trackingDir: argv['tracking-dir'],
              track: argv.track,
              params: { id: argv.id, ood: argv.ood, 'id-split': argv['id-split'] },
            },
            async () => {
              if (!(argv['tile-threshold'] > 0 && argv['tile-threshold'] <= 1))
                throw new ConfigError(`--tile-threshold must be in (0, 1], got ${argv['tile-threshold']}`);
              const { bundle, detectors } = loadOodBundle(argv.model);
              const idDs = await openDatasetForModel(argv.id, argv.model);
              const idTiles = (
                argv['id-split'] === 'all' ? idDs.tiles : tilesOfPartition(idDs, await loadSplit(argv.id), argv['id-split'], argv.fold)
              ).filter((t) => !t.anomaly);
              const oodDs = argv.ood === argv.id ? idDs : await openDatasetForModel(argv.ood, argv.model);
              const marked = oodDs.tiles.filter((t) => t.anomaly);
              const oodTiles = marked.length ? marked : oodDs.tiles;
              if (!idTiles.length || !oodTiles.length) throw new ConfigError('need in-distribution test tiles and OOD tiles');
              const model = await openModel(argv.model, engineOptions(argv));
              const quality = needsQuality(detectors.keys());
              const idIn = await inputs(model, argv.model, idDs, idTiles, 'embed ID', quality);
              const oodIn = await inputs(model, argv.model, oodDs, oodTiles, 'embed OOD', quality);
              await model.dispose();
              const scores = new Map([...detectors].map(([name, det]) => [name, { id: det.score(idIn.set), ood: det.score(oodIn.set) }]));
              const study = oodStudy({
                idTiles,
                oodTiles,
                scores,
                tileThreshold: argv['tile-threshold'],
                topK: TOPK,
                groupOf: oodGroup,
                resamples: argv.resamples,
                seed: argv.seed,
              });
              const hist: Record<string, unknown>[] = [];
              const rocs: Record<string, unknown>[] = [];
              for (const [name, { id, ood }] of scores) {
                for (const v of id) hist.push({ detector: name, set: 'in-distribution', score: v });
                for (const v of ood) hist.push({ detector: name, set: 'OOD', score: v });
                for (const p of rocCurve([...Array(id.length).fill(0), ...Array(ood.length).fill(1)], [...id, ...ood]))
                  rocs.push({ detector: name, fpr: p.fpr, tpr: p.tpr });
              }
              // Grading of the in-distribution slides the primary detector accepts.
              const primaryStored = bundle.detectors.find((d) => d.name === bundle.primary)!;
              const classes = model.meta.classes;
              const slideScores = aggregateScores(
                scores.get(bundle.primary)!.id,
                idTiles.map((t) => t.slideId),
                'topk',
                { k: TOPK },
              );
              const slides = poolSlides(idIn.p, classes);
              const accepted = slides.filter((r) => (slideScores.get(r.slideId) ?? 0) <= primaryStored.slideThreshold);
              const score = (rs: typeof slides) => ({
                slides: rs.length,
                qwk: quadraticWeightedKappa(
                  rs.map((r) => r.label!),
                  rs.map((r) => r.pred),
                  classes.length,
                ),
                accuracy: accuracy(
                  rs.map((r) => r.label!),
                  rs.map((r) => r.pred),
                ),
              });
              const grading = { all: score(slides), accepted: score(accepted) };
              await mkdir(argv.out, { recursive: true });
              // Paths relative to the output folder: reports quote this file, and machines differ.
              const rel = (p: string) => relative(resolve(argv.out), resolve(p)).split(sep).join('/') || '.';
              const report = {
                model: rel(argv.model),
                id: rel(argv.id),
                ood: rel(argv.ood),
                idTiles: idTiles.length,
                oodTiles: oodTiles.length,
                primary: bundle.primary,
                accept: bundle.accept,
                bootstrap: { unit: 'patient', resamples: argv.resamples, seed: argv.seed },
                tileTruth: study.tileTruth,
                tileThreshold: study.tileThreshold,
                oodTilesUsed: study.oodTilesUsed,
                tilesExcluded: study.tilesExcluded,
                detectors: study.detectors,
                bestPerAnomaly: bestDetectorPerGroup(study),
                gradingAfterRejection: grading,
              };
              await writeFileAtomic(
                join(argv.out, 'ood.json'),
                JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
              );
              const header = `# OOD detection: ${argv.model}\n\n${idTiles.length} in-distribution test tiles vs ${oodTiles.length} tiles of OOD slides; slide scores are top-${TOPK} tile means. 95% CIs by patient bootstrap (${argv.resamples} resamples). OOD is the positive class.`;
              const gradingLine = `Grading after rejection by ${bundle.primary} (accepting ${(bundle.accept * 100).toFixed(0)}% of validation slides): QWK ${grading.all.qwk.toFixed(3)} on all ${grading.all.slides} test slides, ${grading.accepted.qwk.toFixed(3)} on the ${grading.accepted.slides} accepted.`;
              const [head, ...rows] = await writeStudy(argv.out, header, study, gradingLine, { hist, rocs });
              printTable(rows, head);
              log.info(`wrote ood.json, ood.md and charts to ${argv.out}`);
              const primary = study.detectors[bundle.primary];
              return {
                result: undefined,
                metrics: {
                  'ood/slide_auroc': primary?.all.slide.auroc.value,
                  'ood/tile_auroc': primary?.all.tile?.auroc.value,
                  'ood/near_slide_auroc': primary?.groups.near?.slide.auroc.value,
                  'ood/far_slide_auroc': primary?.groups.far?.slide.auroc.value,
                },
                artifacts: [join(argv.out, 'ood.json'), join(argv.out, 'ood.md')],
              };
            },
          ),
      )
      .demandCommand(1, 'name an ood subcommand: fit or eval'),
  );
}
