import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, createRng, log, shuffled, writeFileAtomic, type ModelPredictor } from '../../core/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { loadSplit, NEAR_OOD, openTileDataset, tilesOfPartition, type TileDataset, type TileRow } from '../../data/index.ts';
import { accuracy, classIndex, fmtEstimate, oodMetrics, poolSlides, predictTiles, quadraticWeightedKappa, writeChart, type OodMetrics, type TilePredictions } from '../../eval/index.ts';
import { openModel } from '../../engine/index.ts';
import { aggregateScores, calibrateThreshold, createDetector, DEFAULT_DETECTORS, detectorRegistry, loadOodBundle, saveOodBundle, type FeatureSet } from '../../ood/index.ts';
import { printTable } from '../output.ts';
import { createProgress } from '../progress.ts';

const TOPK = 5;

export function featureSet(p: TilePredictions, classes: number[]): FeatureSet {
  return {
    n: p.tiles.length,
    k: p.k,
    d: p.featureDim,
    logits: p.logits!,
    features: p.features!,
    labels: Int32Array.from(p.tiles, (t) => classIndex(t.grade, classes) ?? 0),
  };
}

async function embed(model: ModelPredictor, ds: TileDataset, tiles: TileRow[], label: string): Promise<TilePredictions> {
  const progress = createProgress('tiles');
  progress.start(tiles.length, label);
  let last = 0;
  const p = await predictTiles(model, ds, tiles, { batchSize: 64, keepFeatures: true, onBatch: (done) => { progress.increment(done - last); last = done; } });
  progress.stop();
  return p;
}

function sample(tiles: TileRow[], max: number, key: string): TileRow[] {
  return tiles.length <= max ? tiles : shuffled(tiles, createRng(key)).slice(0, max);
}

/** Near-OOD: tumour look-alikes; far-OOD: artifacts and other tissue (synthetic anomaly names). */
export function oodGroup(anomaly: string): 'near' | 'far' {
  return (NEAR_OOD as readonly string[]).includes(anomaly) ? 'near' : 'far';
}

export function oodCommand(y: Argv): Argv {
  return y.command('ood', 'Out-of-distribution detectors: fit on a model\'s features, evaluate near and far OOD', (s) =>
    s
      .command(
        'fit',
        'Fit detectors on in-distribution training tiles, calibrate thresholds on validation tiles, save them in the model directory',
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('data', { type: 'string', demandOption: true, describe: 'the in-distribution tile dataset (with its split)' })
            .option('method', { type: 'string', array: true, describe: `detectors (default: all): ${DEFAULT_DETECTORS.join(', ')}` })
            .option('fold', { type: 'number', default: 0 })
            .option('accept', { type: 'number', default: 0.95, describe: 'share of in-distribution validation tiles to accept' })
            .option('max-tiles', { type: 'number', default: 4000, describe: 'training tiles used (seeded sample)' }),
        async (argv) => {
          if (!(argv.accept > 0 && argv.accept < 1)) throw new ConfigError(`--accept must be between 0 and 1, got ${argv.accept}`);
          const methods = argv.method ?? DEFAULT_DETECTORS;
          for (const m of methods) if (!detectorRegistry.has(m)) throw new ConfigError(`unknown OOD method "${m}"; known: ${detectorRegistry.names().join(', ')}`);
          const model = await openModel(argv.model, engineOptions(argv));
          const ds = await openTileDataset(argv.data);
          const split = await loadSplit(argv.data);
          const id = (t: TileRow) => !t.anomaly && t.grade !== undefined;
          const train = sample(tilesOfPartition(ds, split, 'train', argv.fold).filter(id), argv['max-tiles'], 'ood-train');
          const val = tilesOfPartition(ds, split, 'val', argv.fold).filter(id);
          if (!train.length || !val.length) throw new ConfigError(`${argv.data}: needs in-distribution training and validation tiles in fold ${argv.fold}`);
          const classes = model.meta.classes;
          const trainSet = featureSet(await embed(model, ds, train, 'embed train'), classes);
          const valP = await embed(model, ds, val, 'embed val');
          await model.dispose();
          const valSet = featureSet(valP, classes);
          const fitted = [];
          for (const m of methods) {
            const t0 = Date.now();
            const det = createDetector(m);
            det.fit(trainSet);
            const scores = det.score(valSet);
            const slide = aggregateScores(scores, val.map((t) => t.slideId), 'topk', { k: TOPK });
            fitted.push({ detector: det, params: {}, threshold: calibrateThreshold(scores, argv.accept), slideThreshold: calibrateThreshold([...slide.values()], argv.accept) });
            log.info(`fitted ${m} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          }
          await saveOodBundle(argv.model, { format: 'gradelab-ood/1', accept: argv.accept, primary: methods[0], aggregation: { method: 'topk', k: TOPK } }, fitted);
          process.stdout.write(`fitted ${methods.length} detectors on ${train.length} tiles (d = ${trainSet.d}), thresholds accept ${(argv.accept * 100).toFixed(0)}% of ${val.length} validation tiles; saved in ${join(argv.model, 'ood')}\n`);
        },
      )
      .command(
        'eval',
        'AUROC, FPR@95TPR, AUPR-In/Out per detector, per anomaly class, near and far, tile and slide level, with CIs',
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('id', { type: 'string', demandOption: true, describe: 'in-distribution dataset (its test partition)' })
            .option('ood', { type: 'string', demandOption: true, describe: 'dataset whose anomalous tiles (or all, if none is marked) are OOD' })
            .option('out', { type: 'string', demandOption: true })
            .option('fold', { type: 'number', default: 0 })
            .option('resamples', { type: 'number', default: 500 })
            .option('seed', { type: 'number', default: 1 }),
        async (argv) => {
          const { bundle, detectors } = loadOodBundle(argv.model);
          const model = await openModel(argv.model, engineOptions(argv));
          const idDs = await openTileDataset(argv.id);
          const idTiles = tilesOfPartition(idDs, await loadSplit(argv.id), 'test', argv.fold).filter((t) => !t.anomaly);
          const oodDs = argv.ood === argv.id ? idDs : await openTileDataset(argv.ood);
          const marked = oodDs.tiles.filter((t) => t.anomaly);
          const oodTiles = marked.length ? marked : oodDs.tiles;
          if (!idTiles.length || !oodTiles.length) throw new ConfigError('need in-distribution test tiles and OOD tiles');
          const idP = await embed(model, idDs, idTiles, 'embed ID');
          const oodP = await embed(model, oodDs, oodTiles, 'embed OOD');
          await model.dispose();
          const classes = model.meta.classes;
          const idSet = featureSet(idP, classes);
          const oodSet = featureSet(oodP, classes);
          const groupsOf = (t: TileRow) => (t.anomaly ? [t.anomaly, oodGroup(t.anomaly)] : ['unlabelled']);
          const results: Record<string, Record<string, unknown>> = {};
          const hist: Record<string, unknown>[] = [];
          const rocs: Record<string, unknown>[] = [];
          const opts = { resamples: argv.resamples, seed: argv.seed };
          for (const [name, det] of detectors) {
            const si = det.score(idSet);
            const so = det.score(oodSet);
            const evalSubset = (oodIdx: number[], level: 'tile' | 'slide'): OodMetrics => {
              if (level === 'tile') {
                const scores = Float64Array.from([...si, ...oodIdx.map((i) => so[i])]);
                const isOod = Int32Array.from([...Array(si.length).fill(0), ...oodIdx.map(() => 1)]);
                const patients = [...idTiles.map((t) => t.patientId), ...oodIdx.map((i) => `ood:${oodTiles[i].patientId}`)];
                return oodMetrics(isOod, scores, patients, opts);
              }
              const idS = aggregateScores(si, idTiles.map((t) => t.slideId), 'topk', { k: TOPK });
              const oodS = aggregateScores(oodIdx.map((i) => so[i]), oodIdx.map((i) => oodTiles[i].slideId), 'topk', { k: TOPK });
              const pat = new Map([...idTiles, ...oodTiles].map((t) => [t.slideId, t.patientId]));
              return oodMetrics(Int32Array.from([...idS.keys()].map(() => 0).concat([...oodS.keys()].map(() => 1))), Float64Array.from([...idS.values(), ...oodS.values()]), [...idS.keys(), ...oodS.keys()].map((s) => pat.get(s)!), opts);
            };
            const all = oodTiles.map((_, i) => i);
            const byGroup: Record<string, { tile: OodMetrics; slide: OodMetrics }> = {};
            const groups = [...new Set(oodTiles.flatMap(groupsOf))].sort();
            for (const g of groups) {
              const idx = all.filter((i) => groupsOf(oodTiles[i]).includes(g));
              byGroup[g] = { tile: evalSubset(idx, 'tile'), slide: evalSubset(idx, 'slide') };
            }
            results[name] = { all: { tile: evalSubset(all, 'tile'), slide: evalSubset(all, 'slide') }, groups: byGroup };
            for (const v of si) hist.push({ detector: name, set: 'in-distribution', score: v });
            for (const v of so) hist.push({ detector: name, set: 'OOD', score: v });
            const { rocCurve } = await import('../../eval/index.ts');
            for (const p of rocCurve([...Array(si.length).fill(0), ...Array(so.length).fill(1)], [...si, ...so])) rocs.push({ detector: name, fpr: p.fpr, tpr: p.tpr });
          }
          // Grading of the in-distribution slides the primary detector accepts.
          const primary = detectors.get(bundle.primary)!;
          const primaryStored = bundle.detectors.find((d) => d.name === bundle.primary)!;
          const slideScores = aggregateScores(primary.score(idSet), idTiles.map((t) => t.slideId), 'topk', { k: TOPK });
          const slides = poolSlides(idP, classes);
          const accepted = slides.filter((r) => (slideScores.get(r.slideId) ?? 0) <= primaryStored.slideThreshold);
          const grading = {
            all: { slides: slides.length, qwk: quadraticWeightedKappa(slides.map((r) => r.label!), slides.map((r) => r.pred), classes.length), accuracy: accuracy(slides.map((r) => r.label!), slides.map((r) => r.pred)) },
            accepted: { slides: accepted.length, qwk: quadraticWeightedKappa(accepted.map((r) => r.label!), accepted.map((r) => r.pred), classes.length), accuracy: accuracy(accepted.map((r) => r.label!), accepted.map((r) => r.pred)) },
          };
          await mkdir(argv.out, { recursive: true });
          const report = { model: argv.model, id: argv.id, ood: argv.ood, idTiles: idTiles.length, oodTiles: oodTiles.length, primary: bundle.primary, accept: bundle.accept, bootstrap: { unit: 'patient', resamples: argv.resamples, seed: argv.seed }, detectors: results, gradingAfterRejection: grading };
          await writeFileAtomic(join(argv.out, 'ood.json'), JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
          const rows = [...detectors.keys()].map((n) => {
            const r = results[n] as { all: { tile: OodMetrics; slide: OodMetrics }; groups: Record<string, { tile: OodMetrics; slide: OodMetrics }> };
            return [n, fmtEstimate(r.all.tile.auroc), fmtEstimate(r.all.tile.fpr95), fmtEstimate(r.all.slide.auroc), r.groups.near ? fmtEstimate(r.groups.near.slide.auroc) : '-', r.groups.far ? fmtEstimate(r.groups.far.slide.auroc) : '-'];
          });
          const header = ['detector', 'AUROC (tiles)', 'FPR@95TPR (tiles)', 'AUROC (slides)', 'near-OOD AUROC (slides)', 'far-OOD AUROC (slides)'];
          const md = [`# OOD detection: ${argv.model}`, '', `${idTiles.length} in-distribution test tiles vs ${oodTiles.length} OOD tiles; slide scores are top-${TOPK} tile means. 95% CIs by patient bootstrap (${argv.resamples} resamples). OOD is the positive class.`, '', `| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`), '', `Grading after rejection by ${bundle.primary} (accepting ${(bundle.accept * 100).toFixed(0)}% of validation slides): QWK ${grading.all.qwk.toFixed(3)} on all ${grading.all.slides} test slides, ${grading.accepted.qwk.toFixed(3)} on the ${grading.accepted.slides} accepted.`, ''];
          await writeFileAtomic(join(argv.out, 'ood.md'), `${md.join('\n')}\n`);
          await writeChart(join(argv.out, 'ood-histograms'), { title: 'OOD scores: in-distribution vs OOD tiles', data: { values: hist }, mark: { type: 'bar', opacity: 0.6 }, encoding: { x: { field: 'score', type: 'quantitative', bin: { maxbins: 40 } }, y: { aggregate: 'count', type: 'quantitative', stack: null }, color: { field: 'set', type: 'nominal' }, facet: { field: 'detector', type: 'nominal', columns: 4 } }, resolve: { scale: { x: 'independent', y: 'independent' } }, width: 180, height: 110 });
          await writeChart(join(argv.out, 'ood-roc'), { title: 'ROC per detector (tiles; OOD positive)', data: { values: rocs }, mark: { type: 'line', interpolate: 'step-after' }, width: 320, height: 320, encoding: { x: { field: 'fpr', type: 'quantitative', title: 'false positive rate (ID flagged)' }, y: { field: 'tpr', type: 'quantitative', title: 'true positive rate (OOD caught)' }, color: { field: 'detector', type: 'nominal' } } });
          printTable(rows, header);
          log.info(`wrote ood.json, ood.md and charts to ${argv.out}`);
        },
      )
      .demandCommand(1, 'name an ood subcommand: fit or eval'),
  );
}
