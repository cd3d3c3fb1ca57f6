import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkModelFitsTiles,
  ClaimBoard,
  ConfigError,
  groupBy,
  modelFile,
  modelTiling,
  sha256Text,
  writeFileAtomic,
  type ModelMeta,
} from '../core/index.ts';
import {
  loadSplit,
  openTileDataset,
  readManifest,
  slideFileName,
  slideIdFromPath,
  tilesOfPartition,
  type Partition,
  type SlideTiling,
} from '../data/index.ts';
import { HEATMAP_FILE, loadHeatmap } from './heatmap.ts';
import { heatmapOfSlide, type HeatmapModel, type HeatmapPooling, type HeatmapSlide } from './slideHeatmap.ts';

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

export interface WriteHeatmapsOptions {
  batch?: number;
  onPlanned?: (n: number) => void;
  onTiles?: (n: number, slide: string) => void;
  /** What else decides the maps (tiling overrides, the slides' source): part of the run's identity. */
  settings?: Record<string, unknown>;
  /** Seconds of silence after which another host's claim on a slide is taken over. */
  staleAfterMs?: number;
  /** all: map, wait for other processes, write the index; worker: map what is free, then stop; finish: write the index or say what is missing. */
  role?: 'all' | 'worker' | 'finish';
  pollMs?: number;
}

const RUN_FILE = 'heatmap-run.json';

/**
 * Maps every slide into OUT/<slide id>/ and writes OUT/index.json in referral order (most urgent
 * first). Any number of processes may share OUT: each claims the next slide no one holds (a dead
 * process's claim is taken over), skips slides already mapped (heatmap.json is written last, whole),
 * and the index is built from the files, so it is the same bytes whichever process writes it and
 * whatever the order slides were mapped in. OUT records the model and settings it was made with
 * (heatmap-run.json): mapping into it with others is refused before any work.
 */
export async function writeHeatmaps(
  slides: readonly HeatmapSlide[],
  model: HeatmapModel,
  out: string,
  options: WriteHeatmapsOptions = {},
): Promise<HeatmapIndexEntry[]> {
  const { board, run } = openHeatmapRun(
    out,
    { dir: model.dir, meta: model.meta, pooling: model.pooling, mil: !!model.mil, settings: options.settings ?? {} },
    options.staleAfterMs,
  );
  // Written once, by the run that starts the folder: a heatmap older than it was made by something else
  // (a version that kept no record, or an interrupted run of other settings whose record was removed).
  const runFile = join(out, RUN_FILE);
  if (!existsSync(runFile)) await writeFileAtomic(runFile, run.text);
  const since = statSync(runFile).mtimeMs;
  const idOf = (s: HeatmapSlide) => s.id ?? slideIdFromPath(s.path);
  const mapped = (s: HeatmapSlide) => {
    const file = join(out, idOf(s), HEATMAP_FILE);
    return existsSync(file) && statSync(file).mtimeMs >= since;
  };
  let pending = slides.filter((s) => !mapped(s));
  if (options.role === 'finish' && pending.length)
    throw new ConfigError(
      `${out}: ${pending.length} slides are not mapped yet: ${pending
        .slice(0, 5)
        .map((s) => `${idOf(s)} (${board.describe(slideFileName(idOf(s))) ?? 'not started'})`)
        .join(', ')}${pending.length > 5 ? ', ...' : ''}; run the workers again`,
    );
  while (pending.length) {
    const waiting: HeatmapSlide[] = [];
    let mine = 0;
    for (const s of pending) {
      if (mapped(s)) continue;
      const claim = board.tryClaim(slideFileName(idOf(s)));
      if (!claim) {
        waiting.push(s);
        continue;
      }
      try {
        // Another process may have finished it between the look and the claim.
        if (!mapped(s)) {
          await heatmapOfSlide(s, model, out, {
            batch: options.batch ?? 64,
            onPlanned: options.onPlanned,
            onTiles: (n) => options.onTiles?.(n, idOf(s)),
          });
          mine++;
        }
      } finally {
        claim.release();
      }
    }
    pending = waiting.filter((s) => !mapped(s));
    if (options.role === 'worker' && !mine) break;
    if (!mine && pending.length) await sleep(options.pollMs ?? 1000);
  }
  board.removeIfEmpty();
  if (pending.length) return [];
  return writeHeatmapIndex(
    slides.map((s) => join(out, idOf(s))),
    out,
  );
}

/** index.json from the slides' heatmap files, in referral order (ties in the slides' order). */
async function writeHeatmapIndex(dirs: string[], out: string): Promise<HeatmapIndexEntry[]> {
  const index = dirs.map((d) => {
    const h = loadHeatmap(d);
    return {
      id: h.slide.id,
      priority: h.referralPriority,
      pred: h.slidePrediction?.pred ?? null,
      reference: h.reference,
      oodFlag: h.slidePrediction?.oodFlag ?? null,
    };
  });
  index.sort((a, b) => b.priority - a.priority);
  await writeFileAtomic(join(out, 'index.json'), JSON.stringify(index, null, 2));
  return index;
}

/** What decides a folder of heatmaps: the model's record, OOD detectors and MIL head, the pooling, the caller's settings. */
export interface HeatmapRunIdentity {
  dir: string;
  meta: ModelMeta;
  pooling: HeatmapPooling;
  mil: boolean;
  settings: Record<string, unknown>;
}

/**
 * Refuses, before any work, a heatmap folder that holds another run's maps (heatmap-run.json differs)
 * or live claims of another run.
 */
export function checkHeatmapRun(out: string, identity: HeatmapRunIdentity, staleAfterMs?: number): void {
  openHeatmapRun(out, identity, staleAfterMs);
}

/** checkHeatmapRun, returning the run and the folder's claim board. */
function openHeatmapRun(
  out: string,
  identity: HeatmapRunIdentity,
  staleAfterMs?: number,
): { run: { key: string; text: string }; board: ClaimBoard } {
  const run = heatmapRun(identity);
  const runFile = join(out, RUN_FILE);
  if (existsSync(runFile) && readFileSync(runFile, 'utf8') !== run.text)
    throw new ConfigError(`${out}: holds heatmaps of another model or other settings (${RUN_FILE}); choose a new --out or remove it`);
  const board = new ClaimBoard(join(out, 'claims'), { run: `heatmap ${run.key}`, staleAfterMs });
  board.checkRun();
  return { run, board };
}

function heatmapRun({ dir, meta, pooling, mil, settings }: HeatmapRunIdentity): { key: string; text: string } {
  const oodDir = modelFile(dir, 'ood');
  const ood = existsSync(oodDir)
    ? readdirSync(oodDir)
        .sort()
        .map((f) => `${f}:${sha256Text(readFileSync(join(oodDir, f)))}`)
    : [];
  const key = sha256Text(JSON.stringify({ meta, ood, pooling, mil, settings })).slice(0, 16);
  return { key, text: `${JSON.stringify({ command: 'heatmap', key, weightsSha256: meta.weightsSha256 ?? null, settings }, null, 2)}\n` };
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
