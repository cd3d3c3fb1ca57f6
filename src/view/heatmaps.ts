import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkModelFitsTiles, ConfigError, groupBy, modelTiling, sha256Text, writeFileAtomic, type ModelMeta } from '../core/index.ts';
import { loadSplit, openTileDataset, readManifest, tilesOfPartition, type Partition, type SlideTiling } from '../data/index.ts';
import { HEATMAP_FILE, loadHeatmap } from './heatmap.ts';
import { heatmapOfSlide, type HeatmapModel, type HeatmapSlide } from './slideHeatmap.ts';

/** Which slides to map: files, every slide of a manifest, or one partition of a tile dataset. */
export type HeatmapSource =
  | { kind: 'slides'; paths: string[] }
  | { kind: 'manifest'; path: string }
  | { kind: 'dataset'; dir: string; split: Partition | 'all'; fold: number };

export interface HeatmapTilingOptions {
  /** Override the model's training stride or tissue share (output pixels; share 0-1). */
  stride?: number;
  minTissue?: number;
  /** Microns per pixel for slides whose files do not say (a manifest's mpp column overrides the file). */
  slideMpp?: number;
  /** Accept a dataset of another tile size with the model's field of view. */
  resample?: boolean;
}

/** The model's tiling, with the user's overrides: how a slide given as a file is cut. */
export function heatmapTiling(meta: ModelMeta, options: HeatmapTilingOptions): SlideTiling {
  const t = modelTiling(meta);
  return {
    tileSize: meta.tileSize,
    mpp: meta.mpp,
    stride: options.stride ?? t.stride,
    minTissue: options.minTissue ?? t.minTissue,
    tissueMethod: t.tissueMethod,
    encoding: t.encoding,
    quality: t.quality,
  };
}

/**
 * The slides to map, each with where its tiles come from. Files and manifests are tiled now as the
 * model's training tiles were; a dataset's partition uses the tiles the dataset holds (the same pixels
 * predict and eval score), with the slide files from the manifest it was tiled from, unchanged since.
 */
export async function slidesToMap(
  source: HeatmapSource,
  model: { dir: string; meta: ModelMeta },
  options: HeatmapTilingOptions = {},
): Promise<HeatmapSlide[]> {
  const tiling = heatmapTiling(model.meta, options);
  if (source.kind === 'slides') {
    if (!source.paths.length) throw new ConfigError('give the slides to map: --slide FILE..., --manifest CSV or --data DATASET');
    for (const p of source.paths) if (!existsSync(p)) throw new ConfigError(`${p}: slide not found`);
    return source.paths.map((path) => ({ path, fallbackMpp: options.slideMpp, tiles: { kind: 'slide', tiling } }));
  }
  if (source.kind === 'manifest') {
    const manifest = readManifest(source.path);
    if (manifest.task !== model.meta.task)
      throw new ConfigError(`${source.path}: a ${manifest.task} manifest, but the model ${model.dir} grades ${model.meta.task}`);
    return manifest.records.map((r) => ({
      path: r.path,
      id: r.slideId,
      grade: r.grade,
      maskPath: r.maskPath,
      scanner: r.scanner,
      mpp: r.mpp,
      fallbackMpp: options.slideMpp,
      tiles: { kind: 'slide', tiling },
    }));
  }
  const ds = await openTileDataset(source.dir);
  checkModelFitsTiles(model.dir, model.meta, { where: source.dir, ...ds.meta }, { resample: options.resample });
  const tiles = source.split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(source.dir), source.split, source.fold);
  const manifest = ds.meta.manifest;
  if (!existsSync(manifest))
    throw new ConfigError(`${source.dir}: its manifest ${manifest} is gone; give the slides with --manifest or --slide`);
  if (sha256Text(readFileSync(manifest)) !== ds.meta.manifestSha256)
    throw new ConfigError(`${source.dir}: its manifest ${manifest} changed after tiling; give the slides with --manifest or --slide`);
  const bySlide = groupBy(tiles, (t) => t.slideId);
  const slides = readManifest(manifest)
    .records.filter((r) => bySlide.has(r.slideId))
    .map((r): HeatmapSlide => ({
      path: r.path,
      id: r.slideId,
      grade: r.grade,
      maskPath: r.maskPath,
      scanner: r.scanner,
      mpp: r.mpp,
      fallbackMpp: ds.meta.slideMpp,
      tiles: { kind: 'dataset', ds, rows: bySlide.get(r.slideId)! },
    }));
  if (!slides.length) throw new ConfigError(`${source.dir}: no slides in the ${source.split} partition of fold ${source.fold}`);
  return slides;
}

export interface HeatmapIndexEntry {
  id: string;
  priority: number;
  pred: number | null;
  reference: number | null;
  oodFlag: boolean | null;
}

/** Maps every slide into OUT/<slide id>/ and writes OUT/index.json in referral order (most urgent first). */
export async function writeHeatmaps(
  slides: readonly HeatmapSlide[],
  model: HeatmapModel,
  out: string,
  options: { batch?: number; onPlanned?: (n: number) => void; onTiles?: (n: number, slide: string) => void } = {},
): Promise<HeatmapIndexEntry[]> {
  const index: HeatmapIndexEntry[] = [];
  for (const s of slides) {
    const h = await heatmapOfSlide(s, model, out, {
      batch: options.batch ?? 64,
      onPlanned: options.onPlanned,
      onTiles: (n) => options.onTiles?.(n, s.id ?? s.path),
    });
    index.push({
      id: h.slide.id,
      priority: h.referralPriority,
      pred: h.slidePrediction?.pred ?? null,
      reference: h.reference,
      oodFlag: h.slidePrediction?.oodFlag ?? null,
    });
  }
  index.sort((a, b) => b.priority - a.priority);
  await writeFileAtomic(join(out, 'index.json'), JSON.stringify(index, null, 2));
  // Read one back: what was written is what the viewer will validate.
  loadHeatmap(join(out, index[0].id));
  return index;
}

/** The heatmap folders under DIR (one per slide, each with heatmap.json), in name order. */
export function heatmapDirs(dir: string): string[] {
  if (!existsSync(dir)) throw new ConfigError(`${dir}: no such folder of heatmaps (make it with \`gradelab heatmap\`)`);
  if (existsSync(join(dir, HEATMAP_FILE))) return [dir];
  const found = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, HEATMAP_FILE)))
    .map((d) => join(dir, d.name))
    .sort();
  if (!found.length) throw new ConfigError(`${dir}: holds no ${HEATMAP_FILE} (make heatmaps with \`gradelab heatmap\`)`);
  return found;
}
