import { join, relative, resolve, sep } from 'node:path';
import { ConfigError, createRng, log, shuffled, writeFileAtomic, type ModelPredictor, type ProgressFactory } from '../core/index.ts';
import { loadSplit, openDatasetForModel, tilesOfPartition, type TileDataset, type TileRow } from '../data/index.ts';
import { NEAR_OOD } from '../synth/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { openModel } from './openModel.ts';
import {
  accuracy,
  bestDetectorPerGroup,
  datasetQuality,
  featureSet,
  oodStudy,
  poolSlides,
  quadraticWeightedKappa,
  rocCurve,
  writeOodStudy,
  type OodStudy,
} from '../eval/index.ts';
import { type TilePredictions } from '../data/index.ts';
import {
  aggregateScores,
  calibrateThreshold,
  createDetector,
  DEFAULT_DETECTORS,
  detectorRegistry,
  type FeatureSet,
  loadOodBundle,
  needsQuality,
  QUALITY_DETECTORS,
  saveOodBundle,
} from '../ood/index.ts';
import { modelOutputs } from './modelOutputs.ts';

/** Slide OOD scores are the mean of their top-k tile scores. */
const TOPK = 5;

/** Near-OOD: tumour look-alikes; far-OOD: artifacts and other tissue (synthetic anomaly names). */
export function oodGroup(anomaly: string): 'near' | 'far' {
  return (NEAR_OOD as readonly string[]).includes(anomaly) ? 'near' : 'far';
}

function sample(tiles: TileRow[], max: number, key: string): TileRow[] {
  return tiles.length <= max ? tiles : shuffled(tiles, createRng(key)).slice(0, max);
}

/** A model's features and logits of tiles, with the tiles' quality features when a qc-* detector needs them. */
async function inputs(
  model: ModelPredictor,
  modelDir: string,
  ds: TileDataset,
  tiles: TileRow[],
  label: string,
  quality: boolean,
  progress?: ProgressFactory,
): Promise<{ p: TilePredictions; set: FeatureSet }> {
  const p = await modelOutputs(model, modelDir, ds, tiles, { label, keepFeatures: true, progress });
  const q = quality ? await datasetQuality(ds, tiles) : undefined;
  return { p, set: featureSet(p, model.meta.classes, q) };
}

export interface FitOodOptions {
  /** Detectors (default: all twelve). */
  methods?: string[];
  fold?: number;
  /** Share of in-distribution validation tiles (and slides) each threshold accepts. */
  accept?: number;
  /** Training tiles used (a seeded sample). */
  maxTiles?: number;
  /** The detector predict, heatmaps and audits use (default: qc-all when fitted, else the first). */
  primary?: string;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

/**
 * Fits OOD detectors on a model's in-distribution training tiles, calibrates each threshold on the
 * validation tiles and slides, and saves them in the model directory (ood/).
 */
export async function fitOod(
  modelDir: string,
  dataDir: string,
  options: FitOodOptions = {},
): Promise<{ methods: string[]; primary: string; trainTiles: number; valTiles: number; featureDim: number }> {
  const accept = options.accept ?? 0.95;
  const fold = options.fold ?? 0;
  if (!(accept > 0 && accept < 1)) throw new ConfigError(`--accept must be between 0 and 1, got ${accept}`);
  const methods = options.methods ?? [...DEFAULT_DETECTORS, ...QUALITY_DETECTORS];
  for (const m of methods)
    if (!detectorRegistry.has(m)) throw new ConfigError(`unknown OOD method "${m}"; known: ${detectorRegistry.names().join(', ')}`);
  const primary = options.primary ?? (methods.includes('qc-all') ? 'qc-all' : methods[0]);
  if (!methods.includes(primary)) throw new ConfigError(`--primary ${primary} is not among the fitted methods (${methods.join(', ')})`);
  const ds = await openDatasetForModel(dataDir, modelDir);
  const split = await loadSplit(dataDir);
  const id = (t: TileRow) => !t.anomaly && t.grade !== undefined;
  const train = sample(tilesOfPartition(ds, split, 'train', fold).filter(id), options.maxTiles ?? 4000, 'ood-train');
  const val = tilesOfPartition(ds, split, 'val', fold).filter(id);
  if (!train.length || !val.length)
    throw new ConfigError(`${dataDir}: needs in-distribution training and validation tiles in fold ${fold}`);
  const model = await openModel(modelDir, options.engine);
  const quality = needsQuality(methods);
  let trainSet: FeatureSet;
  let valSet: FeatureSet;
  try {
    trainSet = (await inputs(model, modelDir, ds, train, 'embed train', quality, options.progress)).set;
    valSet = (await inputs(model, modelDir, ds, val, 'embed val', quality, options.progress)).set;
  } finally {
    await model.dispose();
  }
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
      threshold: calibrateThreshold(scores, accept),
      slideThreshold: calibrateThreshold([...slide.values()], accept),
    });
    log.info(`fitted ${m} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  await saveOodBundle(modelDir, { format: 'gradelab-ood/1', accept, primary, aggregation: { method: 'topk', k: TOPK } }, fitted);
  return { methods, primary, trainTiles: train.length, valTiles: val.length, featureDim: trainSet.d };
}

export interface EvaluateOodOptions {
  /** The partition of the in-distribution dataset that is in-distribution (all: a held-out set). */
  idSplit?: 'train' | 'val' | 'test' | 'all';
  fold?: number;
  /** A tile is OOD when its label mask marks at least this share anomalous. */
  tileThreshold?: number;
  resamples?: number;
  seed?: number;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

export interface OodEvaluation {
  study: OodStudy;
  primary: string;
  /** The detector table (header first), as ood.md has it. */
  table: string[][];
}

/**
 * Every fitted detector against in-distribution test tiles and the OOD dataset's anomalous tiles:
 * OpenOOD's metrics with CIs at tile and slide level, near and far; the grading of the slides the
 * primary detector accepts. Writes ood.json, ood.md and charts into `out`.
 */
export async function evaluateOod(
  modelDir: string,
  idDir: string,
  oodDir: string,
  out: string,
  options: EvaluateOodOptions = {},
): Promise<OodEvaluation> {
  const tileThreshold = options.tileThreshold ?? 0.5;
  const resamples = options.resamples ?? 500;
  const seed = options.seed ?? 1;
  const fold = options.fold ?? 0;
  const idSplit = options.idSplit ?? 'test';
  if (!(tileThreshold > 0 && tileThreshold <= 1)) throw new ConfigError(`--tile-threshold must be in (0, 1], got ${tileThreshold}`);
  const { bundle, detectors } = loadOodBundle(modelDir);
  const idDs = await openDatasetForModel(idDir, modelDir);
  const idTiles = (idSplit === 'all' ? idDs.tiles : tilesOfPartition(idDs, await loadSplit(idDir), idSplit, fold)).filter(
    (t) => !t.anomaly,
  );
  const oodDs = oodDir === idDir ? idDs : await openDatasetForModel(oodDir, modelDir);
  const marked = oodDs.tiles.filter((t) => t.anomaly);
  const oodTiles = marked.length ? marked : oodDs.tiles;
  if (!idTiles.length || !oodTiles.length) throw new ConfigError('need in-distribution test tiles and OOD tiles');
  const model = await openModel(modelDir, options.engine);
  const quality = needsQuality(detectors.keys());
  const classes = model.meta.classes;
  let idIn: Awaited<ReturnType<typeof inputs>>;
  let oodIn: Awaited<ReturnType<typeof inputs>>;
  try {
    idIn = await inputs(model, modelDir, idDs, idTiles, 'embed ID', quality, options.progress);
    oodIn = await inputs(model, modelDir, oodDs, oodTiles, 'embed OOD', quality, options.progress);
  } finally {
    await model.dispose();
  }
  const scores = new Map([...detectors].map(([name, det]) => [name, { id: det.score(idIn.set), ood: det.score(oodIn.set) }]));
  const study = oodStudy({ idTiles, oodTiles, scores, tileThreshold, topK: TOPK, groupOf: oodGroup, resamples, seed });
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
  // Paths relative to the output folder: reports quote this file, and machines differ.
  const rel = (p: string) => relative(resolve(out), resolve(p)).split(sep).join('/') || '.';
  const report = {
    model: rel(modelDir),
    id: rel(idDir),
    ood: rel(oodDir),
    idTiles: idTiles.length,
    oodTiles: oodTiles.length,
    primary: bundle.primary,
    accept: bundle.accept,
    bootstrap: { unit: 'patient', resamples, seed },
    tileTruth: study.tileTruth,
    tileThreshold: study.tileThreshold,
    oodTilesUsed: study.oodTilesUsed,
    tilesExcluded: study.tilesExcluded,
    detectors: study.detectors,
    bestPerAnomaly: bestDetectorPerGroup(study),
    gradingAfterRejection: grading,
  };
  await writeFileAtomic(
    join(out, 'ood.json'),
    JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  const header = `# OOD detection: ${rel(modelDir)}\n\n${idTiles.length} in-distribution test tiles vs ${oodTiles.length} tiles of OOD slides; slide scores are top-${TOPK} tile means. 95% CIs by patient bootstrap (${resamples} resamples). OOD is the positive class.`;
  const gradingLine = `Grading after rejection by ${bundle.primary} (accepting ${(bundle.accept * 100).toFixed(0)}% of validation slides): QWK ${grading.all.qwk.toFixed(3)} on all ${grading.all.slides} test slides, ${grading.accepted.qwk.toFixed(3)} on the ${grading.accepted.slides} accepted.`;
  const table = await writeOodStudy(out, header, study, gradingLine, { hist, rocs });
  return { study, primary: bundle.primary, table };
}
