import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Argv } from 'yargs';
import { estimateStainsMacenko, MacenkoNormalizer, rgbToHed, tissueWeight } from '../../augment/index.ts';
import { ConfigError, createRng, log, shuffled, writeFileAtomic, type ModelPredictor, type RgbImage } from '../../core/index.ts';
import { openModel } from '../../engine/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import {
  loadSplit,
  openTileDataset,
  readDatasetTile,
  ShardReader,
  spreadTilesPerSlide,
  tilesOfPartition,
  type TileDataset,
  type TileRow,
} from '../../data/index.ts';
import {
  evaluatePredictions,
  fmtEstimate,
  imagesQuality,
  poolSlides,
  representationShift,
  writeChart,
  type MetricsReport,
  type TilePredictions,
} from '../../eval/index.ts';
import { aggregateScores, hasOodBundle, loadOodBundle } from '../../ood/index.ts';
import { featureSet, needsQuality } from './ood.ts';

interface Colour {
  hVector: number[];
  eVector: number[];
  meanH: number;
  meanE: number;
  tiles: number;
}

async function readTiles(ds: TileDataset, tiles: TileRow[]): Promise<RgbImage[]> {
  const reader = new ShardReader();
  try {
    return await Promise.all(tiles.map((t) => readDatasetTile(ds, t, reader)));
  } finally {
    await reader.close();
  }
}

/** Median Macenko vectors and mean H/E optical density over tissue pixels. */
function colourStats(images: RgbImage[]): Colour {
  const hs: number[][] = [];
  const es: number[][] = [];
  let h = 0;
  let e = 0;
  let n = 0;
  for (const img of images) {
    const est = estimateStainsMacenko(img);
    if (est) {
      hs.push(est.stains[0]);
      es.push(est.stains[1]);
    }
    const hed = rgbToHed(img);
    for (let i = 0; i < hed.length; i += 3) {
      if (tissueWeight(img.data[i], img.data[i + 1], img.data[i + 2]) < 1) continue;
      h += hed[i];
      e += hed[i + 1];
      n++;
    }
  }
  const median = (vs: number[][]) =>
    [0, 1, 2].map((c) => {
      const s = vs.map((v) => v[c]).sort((a, b) => a - b);
      return s.length ? s[Math.floor(s.length / 2)] : NaN;
    });
  return { hVector: median(hs), eVector: median(es), meanH: n ? h / n : NaN, meanE: n ? e / n : NaN, tiles: images.length };
}

const angle = (a: number[], b: number[]) =>
  (Math.acos(Math.min(1, Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (Math.hypot(...a) * Math.hypot(...b) || 1))) * 180) / Math.PI;

async function predictImages(model: ModelPredictor, tiles: TileRow[], images: RgbImage[]): Promise<TilePredictions> {
  const k = model.k;
  const probs = new Float32Array(tiles.length * k);
  const feats: number[] = [];
  const logits: number[] = [];
  let d = 0;
  for (let i = 0; i < images.length; i += 64) {
    const chunk = images.slice(i, i + 64);
    const { width, height } = chunk[0];
    const data = new Float32Array(chunk.length * width * height * 3);
    chunk.forEach((img, b) => {
      for (let p = 0; p < img.data.length; p++) data[b * img.data.length + p] = img.data[p] / 255;
    });
    const r = await model.run({ n: chunk.length, width, height, channels: 3, data });
    probs.set(r.probs, i * k);
    d = r.features.length / chunk.length;
    for (const v of r.features) feats.push(v);
    for (const v of r.logits) logits.push(v);
  }
  return { tiles, k, probs, head: model.meta.head, features: Float32Array.from(feats), featureDim: d, logits: Float32Array.from(logits) };
}

function sample(tiles: TileRow[], max: number, key: string): TileRow[] {
  return tiles.length <= max ? tiles : shuffled(tiles, createRng(key)).slice(0, max);
}

export function auditCommand(y: Argv): Argv {
  return y.command(
    'audit',
    "Audit a model on a new hospital's slides: representation shift, OOD rate, stain statistics, grade distribution, performance if labelled, and what stain normalisation would change",
    (c) =>
      engineFlags(c)
        .option('model', { type: 'string', demandOption: true })
        .option('site-data', { type: 'string', demandOption: true, describe: "tile dataset of the new site's slides (labels optional)" })
        .option('train-data', { type: 'string', describe: "the model's training dataset (default: from the model's config.yaml)" })
        .option('out', { type: 'string', demandOption: true })
        .option('max-tiles', { type: 'number', default: 1500 })
        .option('resamples', { type: 'number', default: 500 }),
    async (argv) => {
      let trainData = argv['train-data'];
      if (!trainData && existsSync(join(argv.model, 'config.yaml')))
        trainData = (parseYaml(readFileSync(join(argv.model, 'config.yaml'), 'utf8')) as { data?: { dataset?: string } }).data?.dataset;
      if (!trainData) throw new ConfigError('--train-data is needed (the model directory has no config.yaml naming its dataset)');
      const model = await openModel(argv.model, engineOptions(argv));
      const classes = model.meta.classes;
      const trainDs = await openTileDataset(trainData);
      const siteDs = await openTileDataset(argv['site-data']);
      const refTiles = sample(
        spreadTilesPerSlide(
          tilesOfPartition(trainDs, await loadSplit(trainData), 'train', 0).filter((t) => !t.anomaly),
          16,
        ),
        argv['max-tiles'],
        'audit-ref',
      );
      const siteTiles = sample(
        spreadTilesPerSlide(
          siteDs.tiles.filter((t) => !t.anomaly),
          16,
        ),
        argv['max-tiles'],
        'audit-site',
      );
      if (!siteTiles.length) throw new ConfigError(`${argv['site-data']}: no tiles to audit`);
      log.info(`auditing ${siteTiles.length} site tiles against ${refTiles.length} training tiles`);
      const refImages = await readTiles(trainDs, refTiles);
      const siteImages = await readTiles(siteDs, siteTiles);
      const refP = await predictImages(model, refTiles, refImages);
      const siteP = await predictImages(model, siteTiles, siteImages);
      const d = refP.featureDim;
      // Within-training shift (two halves of the reference) is the noise floor the site is read against.
      const half = Math.floor(refTiles.length / 2);
      const floor = representationShift(
        refP.features!.subarray(0, half * d),
        half,
        refP.features!.subarray(half * d),
        refTiles.length - half,
        d,
      );
      const shift = representationShift(refP.features!, refTiles.length, siteP.features!, siteTiles.length, d);

      let oodRate: number | null = null;
      if (hasOodBundle(argv.model)) {
        const { bundle, detectors } = loadOodBundle(argv.model);
        const stored = bundle.detectors.find((x) => x.name === bundle.primary)!;
        const scores = detectors
          .get(bundle.primary)!
          .score(featureSet(siteP, classes, needsQuality([bundle.primary]) ? imagesQuality(siteImages) : undefined));
        const slide = aggregateScores(
          scores,
          siteTiles.map((t) => t.slideId),
          'topk',
          { k: bundle.aggregation.k },
        );
        oodRate = [...slide.values()].filter((v) => v > stored.slideThreshold).length / slide.size;
      }

      const trainSites = [...new Set(refTiles.map((t) => t.site))].sort();
      const colour = {
        training: Object.fromEntries(trainSites.map((s) => [s, colourStats(refImages.filter((_, i) => refTiles[i].site === s))])),
        site: colourStats(siteImages),
      };
      const refColour = colourStats(refImages);
      const stainAngles = { h: angle(colour.site.hVector, refColour.hVector), e: angle(colour.site.eVector, refColour.eVector) };

      const slides = poolSlides(siteP, classes);
      const predDist = classes.map((_, c) => slides.filter((s) => s.pred === c).length / slides.length);
      const trainSlides = new Map(refTiles.map((t) => [t.slideId, t.grade]));
      const trainDist = classes.map((g) => [...trainSlides.values()].filter((v) => v === g).length / trainSlides.size);
      const labelled = slides.some((s) => s.label !== undefined);
      let performance: MetricsReport | undefined;
      if (labelled)
        performance = evaluatePredictions({ path: argv['site-data'], k: classes.length, rows: slides }, { resamples: argv.resamples });

      // What stain normalisation to the training reference would change.
      const mosaic = (images: RgbImage[]) => {
        const w = images[0].width;
        const pick = images.slice(0, 64);
        const data = new Uint8Array(pick.length * w * w * 3);
        pick.forEach((img, i) => data.set(img.data, i * img.data.length));
        return { width: w, height: w * pick.length, data };
      };
      const normaliser = new MacenkoNormalizer().fit(mosaic(refImages));
      const normImages = siteImages.map((img) => normaliser.transform(img));
      const normP = await predictImages(model, siteTiles, normImages);
      await model.dispose();
      const shiftAfter = representationShift(refP.features!, refTiles.length, normP.features!, siteTiles.length, d);
      const normSlides = poolSlides(normP, classes);
      const perfAfter = labelled
        ? evaluatePredictions({ path: 'normalised', k: classes.length, rows: normSlides }, { resamples: argv.resamples })
        : undefined;

      const findings: string[] = [];
      const ratio = shift / (floor || 1e-9);
      findings.push(
        ratio > 2
          ? `The new site looks different to the model: representation shift ${shift.toFixed(3)} is ${ratio.toFixed(1)}x the shift between two halves of its training data (${floor.toFixed(3)}).`
          : `The new site looks like the training data to the model: representation shift ${shift.toFixed(3)} is ${ratio.toFixed(1)}x the within-training shift (${floor.toFixed(3)}).`,
      );
      if (oodRate !== null)
        findings.push(
          `${(oodRate * 100).toFixed(0)}% of the site's slides are flagged out-of-distribution (the detector flags about 5% of training-like slides).`,
        );
      findings.push(
        `Stain vectors differ from the training sites' by ${stainAngles.h.toFixed(1)} degrees (haematoxylin) and ${stainAngles.e.toFixed(1)} degrees (eosin); mean optical density H ${colour.site.meanH.toFixed(3)} vs ${refColour.meanH.toFixed(3)}, E ${colour.site.meanE.toFixed(3)} vs ${refColour.meanE.toFixed(3)}.`,
      );
      const tv = 0.5 * predDist.reduce((s, p, i) => s + Math.abs(p - trainDist[i]), 0);
      findings.push(`Predicted grades differ from the training grade distribution by a total variation of ${tv.toFixed(2)}.`);
      if (performance)
        findings.push(
          `On the site's labelled slides: QWK ${fmtEstimate(performance.metrics.qwk)}, accuracy ${fmtEstimate(performance.metrics.accuracy)}.`,
        );
      findings.push(
        `Macenko normalisation to the training reference changes the representation shift from ${shift.toFixed(3)} to ${shiftAfter.toFixed(3)}${perfAfter ? ` and QWK from ${performance!.metrics.qwk.value.toFixed(3)} to ${perfAfter.metrics.qwk.value.toFixed(3)}` : ''}.`,
      );

      await mkdir(argv.out, { recursive: true });
      const report = {
        model: argv.model,
        site: argv['site-data'],
        training: trainData,
        tiles: { site: siteTiles.length, reference: refTiles.length },
        representationShift: { value: shift, withinTraining: floor, ratio, afterNormalisation: shiftAfter },
        oodFlagRate: oodRate,
        colour: { ...colour, trainingPooled: refColour, angleDegrees: stainAngles },
        gradeDistribution: { classes, predicted: predDist, training: trainDist, totalVariation: tv },
        performance: performance ? { qwk: performance.metrics.qwk, accuracy: performance.metrics.accuracy, slides: performance.n } : null,
        normalisation: { shiftAfter, qwkAfter: perfAfter?.metrics.qwk ?? null },
        findings,
      };
      await writeFileAtomic(
        join(argv.out, 'audit.json'),
        JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
      );
      const md = [
        `# Site audit: ${argv['site-data']}`,
        '',
        '## Findings',
        '',
        ...findings.map((f) => `- ${f}`),
        '',
        '## Stain statistics',
        '',
        '| source | tiles | H vector | E vector | mean OD H | mean OD E |',
        '|---|---|---|---|---|---|',
        ...[...Object.entries(colour.training), ['new site', colour.site] as [string, Colour]].map(
          ([n, c]) =>
            `| ${n} | ${c.tiles} | ${c.hVector.map((v) => v.toFixed(3)).join(', ')} | ${c.eVector.map((v) => v.toFixed(3)).join(', ')} | ${c.meanH.toFixed(3)} | ${c.meanE.toFixed(3)} |`,
        ),
        '',
        '## Grade distribution',
        '',
        `| grade | ${classes.join(' | ')} |`,
        `|---|${classes.map(() => '---').join('|')}|`,
        `| training slides | ${trainDist.map((v) => v.toFixed(2)).join(' | ')} |`,
        `| predicted at the site | ${predDist.map((v) => v.toFixed(2)).join(' | ')} |`,
        '',
      ];
      await writeFileAtomic(join(argv.out, 'summary.md'), `${md.join('\n')}\n`);
      await writeChart(join(argv.out, 'grade-distribution'), {
        title: 'Grade distribution: training slides vs predicted at the site',
        width: 320,
        height: 220,
        data: {
          values: classes.flatMap((g, i) => [
            { grade: String(g), source: 'training (labels)', share: trainDist[i] },
            { grade: String(g), source: 'site (predicted)', share: predDist[i] },
          ]),
        },
        mark: 'bar',
        encoding: {
          x: { field: 'grade', type: 'ordinal' },
          xOffset: { field: 'source' },
          y: { field: 'share', type: 'quantitative' },
          color: { field: 'source', type: 'nominal' },
        },
      });
      await writeChart(join(argv.out, 'stain-od'), {
        title: 'Mean optical density per stain',
        width: 320,
        height: 220,
        data: {
          values: [...Object.entries(colour.training), ['new site', colour.site] as [string, Colour]].flatMap(([n, c]) => [
            { source: n, stain: 'haematoxylin', od: c.meanH },
            { source: n, stain: 'eosin', od: c.meanE },
          ]),
        },
        mark: 'bar',
        encoding: {
          x: { field: 'source', type: 'nominal', axis: { labelAngle: 0 } },
          xOffset: { field: 'stain' },
          y: { field: 'od', type: 'quantitative' },
          color: { field: 'stain', type: 'nominal' },
        },
      });
      process.stdout.write(`${findings.map((f) => `- ${f}`).join('\n')}\n`);
    },
  );
}
