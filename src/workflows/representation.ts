import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  checkWritable,
  ConfigError,
  groupBy,
  readModelMeta,
  silentProgress,
  writeFileAtomic,
  type EncoderSpec,
  type ProgressFactory,
} from '../core/index.ts';
import {
  importedFeatureSets,
  loadSplit,
  openDatasetForModel,
  openTileDataset,
  spreadTilesPerSlide,
  tilesOfPartition,
  type Partition,
  type TileDataset,
  type TileRow,
} from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import {
  confounderDecodability,
  confoundingSchedule,
  PROBE_C_GRID,
  cromaHistogramSpec,
  neighbourRobustness,
  probeSweep,
  probeSweepSpec,
  representationFileSchema,
  representationMarkdown,
  scanNeighbours,
  writeChart,
  type RepresentationFile,
  type SweepSlide,
} from '../eval/index.ts';
import { extractEmbeddings } from './embeddings.ts';
import { modelOutputs } from './modelOutputs.ts';
import { openModel } from './openModel.ts';

/** Where the embeddings come from: a model's features, a frozen encoder (cached), or imported CLAM/TRIDENT features. */
export type EmbeddingSource = { model: string } | { encoder: EncoderSpec } | { features: string };

export interface RepresentationOptions {
  /** Biology: `grade` or a label column of the dataset. */
  label?: string;
  confounder?: 'site' | 'scanner';
  /** Independence group: neighbours from it are never counted; bootstrap and CV folds draw whole groups. */
  group?: 'patient' | 'slide';
  split?: Partition | 'all';
  fold?: number;
  tilesPerSlide?: number;
  /** Upper bound on embeddings (the neighbour scan costs samples^2): tiles per slide shrink to fit. */
  maxSamples?: number;
  kCandidates?: number[];
  m?: number;
  replicates?: number;
  resamples?: number;
  seed?: number;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

function labelOf(t: TileRow, label: string): string | undefined {
  if (label === 'grade') return t.grade === undefined ? undefined : String(t.grade);
  const v = t.labels[label];
  return v === undefined || v === '' ? undefined : v;
}

/** Values in a stable order: numbers numerically, then text. */
const ordered = (values: Iterable<string>) =>
  [...new Set(values)].sort((a, b) => (Number.isFinite(+a) && Number.isFinite(+b) ? +a - +b : a.localeCompare(b)));

/** The tiles the study reads, checked before any embedding is computed. */
function studyTiles(
  ds: TileDataset,
  partition: TileRow[],
  o: Required<Pick<RepresentationOptions, 'label' | 'confounder' | 'tilesPerSlide' | 'maxSamples'>>,
) {
  if (o.label !== 'grade' && !ds.meta.labelColumns.includes(o.label))
    throw new ConfigError(`${ds.dir}: no label column "${o.label}" (it has grade${ds.meta.labelColumns.map((c) => `, ${c}`).join('')})`);
  const usable = partition.filter((t) => !t.anomaly && labelOf(t, o.label) !== undefined);
  const slides = new Set(usable.map((t) => t.slideId)).size;
  const perSlide = Math.max(1, Math.min(o.tilesPerSlide, Math.floor(o.maxSamples / Math.max(1, slides))));
  const spread = spreadTilesPerSlide(usable, perSlide);
  // More slides than --max-samples: one tile each of an even spread of them.
  const tiles =
    spread.length <= o.maxSamples
      ? spread
      : Array.from({ length: o.maxSamples }, (_, i) => spread[Math.floor((i * spread.length) / o.maxSamples)]);
  const classes = ordered(tiles.map((t) => labelOf(t, o.label)!));
  const values = ordered(tiles.map((t) => t[o.confounder]));
  if (classes.length < 2)
    throw new ConfigError(`${ds.dir}: ${classes.length} value(s) of ${o.label} among the labelled slides; the study needs two or more`);
  if (values.length < 2)
    throw new ConfigError(
      `${ds.dir}: every slide has ${o.confounder} "${values[0] ?? ''}"; confounding needs two or more ${o.confounder}s`,
    );
  const shared = classes.filter((c) => new Set(tiles.filter((t) => labelOf(t, o.label) === c).map((t) => t[o.confounder])).size > 1);
  if (!shared.length)
    throw new ConfigError(`${ds.dir}: no ${o.label} occurs at two ${o.confounder}s, so biology and ${o.confounder} cannot be told apart`);
  return { tiles, classes, values };
}

/** The dataset as the source reads it: checked against the model's tile size and resolution where there is one. */
function datasetFor(source: EmbeddingSource, dataDir: string): Promise<TileDataset> {
  return 'model' in source ? openDatasetForModel(dataDir, source.model) : openTileDataset(dataDir);
}

/** The embeddings of `tiles` (n x dim) and a name for the source without any machine's path. */
async function featuresOf(source: EmbeddingSource, ds: TileDataset, tiles: TileRow[], o: RepresentationOptions) {
  if ('model' in source) {
    const model = await openModel(source.model, o.engine);
    try {
      const out = await modelOutputs(model, source.model, ds, tiles, { label: 'embeddings', keepFeatures: true, progress: o.progress });
      if (!out.features || !out.featureDim) throw new ConfigError(`${source.model}: the model's engine gives no features`);
      const meta = readModelMeta(source.model);
      return { features: out.features, dim: out.featureDim, name: `model ${basename(source.model)} (${meta.backbone} features)` };
    } finally {
      await model.dispose();
    }
  }
  if ('features' in source) {
    const set = importedFeatureSets(ds).get(source.features);
    if (!set)
      throw new ConfigError(
        `${ds.dir}: no imported features named "${source.features}" (it has: ${[...importedFeatureSets(ds).keys()].join(', ') || 'none'}; gradelab dataset import --features)`,
      );
    return { features: set.cache.read(tiles), dim: set.cache.dim, name: `${set.imported.tool} features ${source.features}` };
  }
  const { cache } = await extractEmbeddings(ds, source.encoder, { tiles, engine: o.engine, progress: o.progress });
  return { features: cache.read(tiles), dim: cache.dim, name: `encoder ${basename(source.encoder.onnx)}` };
}

/** Mean embedding of each slide's sampled tiles, in slide order. */
function slideMeans(tiles: TileRow[], features: ArrayLike<number>, d: number) {
  const bySlide = groupBy(
    tiles,
    (t) => t.slideId,
    (_, i) => i,
  );
  const x = new Float64Array(bySlide.size * d);
  const first: TileRow[] = [];
  [...bySlide.values()].forEach((rows, s) => {
    first.push(tiles[rows[0]]);
    for (const i of rows) for (let j = 0; j < d; j++) x[s * d + j] += features[i * d + j] / rows.length;
  });
  return { x, slides: first };
}

/**
 * How much an embedding encodes its confounder (site, scanner) beside the biology (grade or a label
 * column), as croma and PathoROB measure it: RI, MaRI and CRoMa on tile embeddings, a grouped-CV probe
 * naming the confounder, and the biology probe's APD and nIPD over a confounding schedule on slide
 * embeddings. Writes representation.json, representation.md, croma.csv and two charts.
 */
export async function representationStudy(
  source: EmbeddingSource,
  dataDir: string,
  out: string,
  options: RepresentationOptions = {},
): Promise<RepresentationFile> {
  const { label = 'grade', confounder = 'site', group = 'patient', split = 'all', fold = 0, seed = 1 } = options;
  const { tilesPerSlide = 8, maxSamples = 4000, kCandidates = [5, 11, 21], m = 5, replicates = 5, resamples = 1000 } = options;
  for (const [flag, v] of Object.entries({ 'tiles-per-slide': tilesPerSlide, 'max-samples': maxSamples, m, replicates, resamples }))
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`--${flag} must be a positive integer, got ${v}`);
  if (!kCandidates.length || kCandidates.some((k) => !Number.isInteger(k) || k < 1))
    throw new ConfigError(`--k takes positive integers, got ${kCandidates.join(',')}`);
  checkWritable(out, '--out');
  const ds = await datasetFor(source, dataDir);
  const partition = split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(dataDir), split, fold);
  const { tiles, classes, values } = studyTiles(ds, partition, { label, confounder, tilesPerSlide, maxSamples });
  const emb = await featuresOf(source, ds, tiles, options);
  const groupKey = (t: TileRow) => (group === 'patient' ? t.patientId : t.slideId);
  const groupNames = ordered(tiles.map(groupKey));
  const samples = {
    n: tiles.length,
    d: emb.dim,
    features: emb.features,
    labels: Int32Array.from(tiles, (t) => classes.indexOf(labelOf(t, label)!)),
    confounders: Int32Array.from(tiles, (t) => values.indexOf(t[confounder])),
    groups: Int32Array.from(tiles, (t) => groupNames.indexOf(groupKey(t))),
  };
  const progress = (options.progress ?? silentProgress)('samples');
  progress.start(tiles.length, 'neighbours');
  const scan = scanNeighbours(samples, Math.max(...kCandidates), m, () => progress.increment(1));
  progress.stop();
  const neighbours = neighbourRobustness(samples, scan, { kCandidates, classes: classes.length, resamples, seed, groupNames });
  const decodability = confounderDecodability(emb.features, emb.dim, samples.confounders, tiles.map(groupKey), {
    classes: values.length,
    seed,
    resamples,
  });
  const sweep = await runSweep(tiles, emb.features, emb.dim, { label, confounder, classes, replicates, seed, progress: options.progress });
  const result = representationFileSchema.parse({
    format: 'gradelab-representation/1',
    source: emb.name,
    label,
    confounder,
    group,
    samples: tiles.length,
    slides: new Set(tiles.map((t) => t.slideId)).size,
    groups: groupNames.length,
    dim: emb.dim,
    classes,
    confounderValues: values,
    neighbours: { ...neighbours, croma: { ...neighbours.croma, values: undefined } },
    decodability,
    sweep,
  });
  await mkdir(out, { recursive: true });
  await writeFileAtomic(join(out, 'representation.json'), `${JSON.stringify(result, (_, v) => (Number.isNaN(v) ? null : v), 2)}\n`);
  await writeFileAtomic(join(out, 'representation.md'), representationMarkdown(result));
  await writeFileAtomic(
    join(out, 'croma.csv'),
    `slide_id,x,y,${label},${confounder},croma\n${tiles.map((t, i) => `${JSON.stringify(t.slideId)},${t.x},${t.y},${classes[samples.labels[i]]},${JSON.stringify(t[confounder])},${Number.isFinite(neighbours.croma.values[i]) ? neighbours.croma.values[i].toFixed(6) : ''}`).join('\n')}\n`,
  );
  await writeChart(
    join(out, 'croma'),
    cromaHistogramSpec(
      tiles.flatMap((t, i) =>
        Number.isFinite(neighbours.croma.values[i]) ? [{ croma: neighbours.croma.values[i], confounder: t[confounder] }] : [],
      ),
      confounder,
    ),
  );
  if (!('skipped' in result.sweep)) await writeChart(join(out, 'probe-sweep'), probeSweepSpec(result.sweep));
  return result;
}

/** The two most common confounder values and the classes with 4 or more slides at both; the sweep on their slide means. */
async function runSweep(
  tiles: TileRow[],
  features: ArrayLike<number>,
  d: number,
  o: { label: string; confounder: 'site' | 'scanner'; classes: string[]; replicates: number; seed: number; progress?: ProgressFactory },
) {
  const { x, slides } = slideMeans(tiles, features, d);
  const counts = [...groupBy(slides, (s) => s[o.confounder])].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  const pair = counts.slice(0, 2).map(([v]) => v) as [string, string];
  const cellSize = (v: string, c: string) => slides.filter((s) => s[o.confounder] === v && labelOf(s, o.label) === c).length;
  const classes = o.classes.filter((c) => pair.every((v) => cellSize(v, c) >= 4));
  if (classes.length < 2)
    return {
      skipped: `the probe sweep needs two ${o.label} values with 4 or more slides at each of the two largest ${o.confounder}s (${pair.join(', ')}); ${classes.length ? `only ${classes.join(', ')} has` : 'none has'}`,
    };
  const sweepSlides: SweepSlide[] = slides.flatMap((s, row) => {
    const c = classes.indexOf(labelOf(s, o.label)!);
    const v = pair.indexOf(s[o.confounder]);
    return c >= 0 && v >= 0 ? [{ row, label: c, confounder: v as 0 | 1 }] : [];
  });
  const smallest = Math.min(...pair.flatMap((v) => classes.map((c) => cellSize(v, c))));
  const progress = (o.progress ?? silentProgress)('fits');
  progress.start(
    confoundingSchedule(smallest, classes.length, 0.25).splits.length * o.replicates * (PROBE_C_GRID.length + 1),
    'probe sweep',
  );
  const sweep = probeSweep(x, d, sweepSlides, classes.length, {
    replicates: o.replicates,
    seed: o.seed,
    onFit: () => progress.increment(1),
  });
  progress.stop();
  return { confounderValues: pair, classes, ...sweep! };
}
