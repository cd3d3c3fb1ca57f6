import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { checkModelFitsTiles, DatasetError, isUserError, loadJsonFile, readModelMeta, writeFileAtomic, type Task } from '../core/index.ts';
import type { Manifest, SlideIdentity, SlideRecord } from './manifest.ts';
import { openSlide } from './openSlide.ts';
import type { SlideSource } from './slide.ts';
import { decodeTile, ShardReader, ShardWriter, type TileEncoding } from './shards.ts';
import { planSlideTiles, storedTileBytes } from './slideTiles.ts';
import type { TissueMethod } from './tissue.ts';
import { maskFraction, type TilingOptions } from './tiling.ts';
import type { RgbImage } from '../core/index.ts';

export const DATASET_VERSION = 1;

/** dataset.json: how a dataset was tiled, from what, and whether it is finished. */
export const datasetMetaSchema = z
  .object({
    version: z.number().int(),
    task: z.enum(['prostate', 'breast']),
    tileSize: z.number().int().positive(),
    mpp: z.number().positive(),
    stride: z.number().int().positive(),
    minTissue: z.number().min(0).max(1),
    tissueMethod: z.enum(['saturation', 'od']),
    encoding: z.enum(['jpeg', 'raw']),
    quality: z.number().int().min(1).max(100),
    /** The manifest tiled, relative to the dataset folder on disk (absolute in datasets from before 0.2); absolute once opened. */
    manifest: z.string(),
    manifestSha256: z.string(),
    labelColumns: z.array(z.string()),
    /** --slide-mpp: microns per pixel assumed for slides whose file and manifest row do not say. */
    slideMpp: z.number().positive().optional(),
    /**
     * SHA-256 of the tile table and the settings that made it: two tilings of one manifest differ here.
     * Computed when tiling finishes (and on opening datasets from before it was stored).
     */
    sha256: z.string().optional(),
    /** False until every slide is tiled and tiles.csv is written. */
    complete: z.boolean(),
    slides: z.number().int().min(0),
    tiles: z.number().int().min(0),
    failedSlides: z.number().int().min(0),
  })
  .strict();
export type TileDatasetMeta = z.infer<typeof datasetMetaSchema> & { task: Task; tissueMethod: TissueMethod; encoding: TileEncoding };

/**
 * Reads a dataset's dataset.json: its version first (a newer gradelab may write another shape), then
 * every field; a file cut short or edited by hand is one line naming it and the field.
 */
export function readDatasetMeta(dir: string): TileDatasetMeta {
  const path = join(dir, 'dataset.json');
  const raw = loadJsonFile(path, z.object({ version: z.unknown() }).loose(), 'dataset description');
  if (raw.version !== DATASET_VERSION)
    throw new DatasetError(
      path,
      `dataset version ${String(raw.version)} is not supported by this gradelab (it reads version ${DATASET_VERSION})`,
    );
  return loadJsonFile(path, datasetMetaSchema, 'dataset description');
}

export interface TileRow extends SlideIdentity {
  index: number;
  x: number;
  y: number;
  level: number;
  mpp: number;
  tissue: number;
  shard: string;
  offset: number;
  length: number;
  /** Share of the tile that the slide's label mask marks anomalous (when the manifest gives masks). */
  anomalyFraction?: number;
}

export interface TileDataset {
  dir: string;
  meta: TileDatasetMeta;
  tiles: TileRow[];
}

export interface BuildOptions extends TilingOptions {
  out: string;
  encoding?: TileEncoding;
  quality?: number;
  tissueMethod?: TissueMethod;
  /** Record slides that fail to read and go on, instead of stopping at the first. */
  skipBad?: boolean;
  /** Tiles read and encoded at once per slide. */
  concurrency?: number;
  onSlideStart?: (record: SlideRecord, index: number, total: number, tiles: number) => void;
  onTile?: () => void;
  onSlideDone?: (record: SlideRecord, result: SlideResult) => void;
}

export interface SlideResult {
  status: 'done' | 'skipped-existing' | 'failed';
  tiles: number;
  error?: string;
}

const FIXED_COLUMNS = ['slide_id', 'patient_id', 'site', 'scanner', 'grade'];
const POSITION_COLUMNS = ['anomaly', 'x', 'y', 'level', 'mpp', 'tissue', 'shard', 'offset', 'length'];
/** Columns that datasets tiled by older versions lack. */
const OPTIONAL_COLUMNS = ['anomaly_fraction'];

function safeName(slideId: string): string {
  const base = slideId.replace(/[^A-Za-z0-9._-]/g, '_');
  // A hash suffix keeps two ids that sanitise alike ("a/b", "a_b") apart.
  return base === slideId ? base : `${base}-${createHash('sha1').update(slideId).digest('hex').slice(0, 8)}`;
}

/** A dataset's tiling as a model records it (the tiles it was trained on), so slides are graded alike. */
export function tilingOf(meta: TileDatasetMeta): {
  stride: number;
  minTissue: number;
  tissueMethod: TissueMethod;
  encoding: TileEncoding;
  quality: number;
} {
  return {
    stride: meta.stride,
    minTissue: meta.minTissue,
    tissueMethod: meta.tissueMethod,
    encoding: meta.encoding,
    quality: meta.quality,
  };
}

/** The microns per pixel a slide was tiled with and where it came from: the manifest row, the file, or --slide-mpp. */
function slideMppUsed(rec: SlideRecord, slide: SlideSource, override: number | undefined): [string, string] {
  if (rec.mpp !== undefined) return [String(rec.mpp), 'manifest'];
  if (slide.mpp !== undefined) return [String(slide.mpp), 'file'];
  return override === undefined ? ['', ''] : [String(override), '--slide-mpp'];
}

/** The dataset's identity: its settings and its tile table, hashed together. */
function datasetSha256(meta: TileDatasetMeta, table: string): string {
  return createHash('sha256')
    .update(JSON.stringify(settingsOf(meta)))
    .update('\n')
    .update(table)
    .digest('hex');
}

function settingsOf(meta: TileDatasetMeta) {
  const { tileSize, mpp, stride, minTissue, tissueMethod, encoding, quality, manifestSha256, slideMpp } = meta;
  return { tileSize, mpp, stride, minTissue, tissueMethod, encoding, quality, manifestSha256, slideMpp: slideMpp ?? null };
}

/**
 * Tiles every slide of a manifest into a dataset folder: dataset.json, tiles.csv, slides.csv and one
 * shard per slide under shards/. Each slide is committed on its own (shard, then its rows under
 * rows/), so re-running skips finished slides; tiles.csv appears only when all are done.
 */
export async function buildTileDataset(manifest: Manifest, options: BuildOptions): Promise<TileDataset> {
  const out = options.out;
  const manifestText = readFileSync(manifest.path);
  const meta: TileDatasetMeta = {
    version: DATASET_VERSION,
    task: manifest.task,
    tileSize: options.tileSize,
    mpp: options.mpp,
    stride: options.stride ?? options.tileSize,
    minTissue: options.minTissue ?? 0.5,
    tissueMethod: options.tissueMethod ?? 'saturation',
    encoding: options.encoding ?? 'jpeg',
    quality: options.quality ?? 90,
    manifest: relative(out, manifest.path).split(sep).join('/'),
    manifestSha256: createHash('sha256').update(manifestText).digest('hex'),
    labelColumns: manifest.labelColumns,
    ...(options.slideMpp !== undefined ? { slideMpp: options.slideMpp } : {}),
    complete: false,
    slides: manifest.records.length,
    tiles: 0,
    failedSlides: 0,
  };
  const metaPath = join(out, 'dataset.json');
  if (existsSync(metaPath)) {
    const prev = readDatasetMeta(out);
    const a = JSON.stringify(settingsOf(prev));
    const b = JSON.stringify(settingsOf(meta));
    if (a !== b) {
      throw new DatasetError(
        out,
        `already holds a dataset tiled with other settings or another manifest (${a} vs ${b}); choose a new --out or remove it`,
      );
    }
  }
  await mkdir(join(out, 'shards'), { recursive: true });
  await mkdir(join(out, 'rows'), { recursive: true });
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  await rm(join(out, 'tiles.csv'), { force: true });

  const header = [...FIXED_COLUMNS, ...manifest.labelColumns, ...POSITION_COLUMNS, ...OPTIONAL_COLUMNS];
  const slideRows: string[][] = [];
  const concurrency = Math.max(1, options.concurrency ?? 4);

  for (let si = 0; si < manifest.records.length; si++) {
    const rec = manifest.records[si];
    const name = safeName(rec.slideId);
    const rowsPath = join(out, 'rows', `${name}.csv`);
    const shardRel = `shards/${name}.bin`;
    if (existsSync(rowsPath)) {
      const n = Math.max(0, readFileSync(rowsPath, 'utf8').split('\n').filter(Boolean).length - 1);
      options.onSlideStart?.(rec, si, manifest.records.length, 0);
      options.onSlideDone?.(rec, { status: 'skipped-existing', tiles: n });
      const slide = await openSlide(rec.path, { id: rec.slideId });
      const used = slideMppUsed(rec, slide, options.slideMpp);
      await slide.close();
      slideRows.push([rec.slideId, rec.patientId, rec.site, rec.scanner, String(rec.grade ?? ''), 'done', String(n), '', ...used]);
      meta.tiles += n;
      continue;
    }
    let shard: ShardWriter | undefined;
    try {
      const slide = await openSlide(rec.path, { id: rec.slideId });
      let labelMask: SlideSource | undefined;
      try {
        const { grid } = await planSlideTiles(slide, meta, rec.mpp ?? (slide.mpp === undefined ? options.slideMpp : undefined));
        // Anomalous slides with a label mask: each tile's anomalous share, for tile-level OOD truth.
        if (rec.anomaly && rec.maskPath) labelMask = await openSlide(rec.maskPath, { id: `${rec.slideId}-mask` });
        options.onSlideStart?.(rec, si, manifest.records.length, grid.tiles.length);
        shard = await ShardWriter.create(join(out, shardRel));
        const rows: string[][] = [];
        const tileMpp = grid.slideMpp * grid.downsample;
        for (let i = 0; i < grid.tiles.length; i += concurrency) {
          const batch = grid.tiles.slice(i, i + concurrency);
          const encoded = await Promise.all(batch.map((t) => storedTileBytes(slide, t, meta)));
          for (let k = 0; k < batch.length; k++) {
            const t = batch[k];
            const { offset, length } = await shard.append(encoded[k]);
            const fraction = labelMask
              ? (await maskFraction(labelMask, t.x, t.y, meta.tileSize * grid.downsample)).toFixed(3)
              : rec.anomaly
                ? ''
                : '0';
            rows.push([
              rec.slideId,
              rec.patientId,
              rec.site,
              rec.scanner,
              String(rec.grade ?? ''),
              ...manifest.labelColumns.map((c) => rec.labels[c] ?? ''),
              rec.anomaly,
              String(t.x),
              String(t.y),
              String(t.level),
              tileMpp.toFixed(4),
              t.tissue.toFixed(3),
              shardRel,
              String(offset),
              String(length),
              fraction,
            ]);
            options.onTile?.();
          }
        }
        await shard.commit();
        shard = undefined;
        await writeFileAtomic(rowsPath, stringify([header, ...rows]));
        meta.tiles += rows.length;
        slideRows.push([
          rec.slideId,
          rec.patientId,
          rec.site,
          rec.scanner,
          String(rec.grade ?? ''),
          'done',
          String(rows.length),
          '',
          ...slideMppUsed(rec, slide, options.slideMpp),
        ]);
        options.onSlideDone?.(rec, { status: 'done', tiles: rows.length });
      } finally {
        await labelMask?.close();
        await slide.close();
      }
    } catch (err) {
      await shard?.abort();
      if (!options.skipBad || !isUserError(err)) throw err;
      const message = (err as Error).message;
      meta.failedSlides++;
      slideRows.push([rec.slideId, rec.patientId, rec.site, rec.scanner, String(rec.grade ?? ''), 'failed', '0', message, '', '']);
      options.onSlideDone?.(rec, { status: 'failed', tiles: 0, error: message });
    }
  }

  // Assemble tiles.csv from the per-slide rows in manifest order.
  const all: string[][] = [header];
  for (const rec of manifest.records) {
    const p = join(out, 'rows', `${safeName(rec.slideId)}.csv`);
    if (!existsSync(p)) continue;
    const rows = parse(await readFile(p, 'utf8')) as string[][];
    all.push(...rows.slice(1));
  }
  await writeFileAtomic(
    join(out, 'slides.csv'),
    stringify([
      ['slide_id', 'patient_id', 'site', 'scanner', 'grade', 'status', 'tiles', 'error', 'slide_mpp', 'mpp_source'],
      ...slideRows,
    ]),
  );
  const table = stringify(all);
  await writeFileAtomic(join(out, 'tiles.csv'), table);
  meta.sha256 = datasetSha256(meta, table);
  meta.complete = true;
  meta.tiles = all.length - 1;
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  return { dir: out, meta: { ...meta, manifest: resolve(out, meta.manifest) }, tiles: rowsToTiles(out, all) };
}

function rowsToTiles(dir: string, rows: string[][]): TileRow[] {
  const header = rows[0];
  const idx = (name: string) => header.indexOf(name);
  for (const c of [...FIXED_COLUMNS, ...POSITION_COLUMNS]) {
    if (idx(c) < 0) throw new DatasetError(join(dir, 'tiles.csv'), `missing column "${c}"`);
  }
  const labelCols = header.filter((h) => !FIXED_COLUMNS.includes(h) && !POSITION_COLUMNS.includes(h) && !OPTIONAL_COLUMNS.includes(h));
  const fractionAt = idx('anomaly_fraction');
  return rows.slice(1).map((r, i) => {
    const num = (name: string) => {
      const v = Number(r[idx(name)]);
      if (!Number.isFinite(v)) throw new DatasetError(join(dir, 'tiles.csv'), `line ${i + 2}: ${name} "${r[idx(name)]}" is not a number`);
      return v;
    };
    const g = r[idx('grade')];
    return {
      index: i,
      slideId: r[idx('slide_id')],
      patientId: r[idx('patient_id')],
      site: r[idx('site')],
      scanner: r[idx('scanner')],
      grade: g === '' ? undefined : Number(g),
      labels: Object.fromEntries(labelCols.map((c) => [c, r[idx(c)]])),
      anomaly: r[idx('anomaly')],
      x: num('x'),
      y: num('y'),
      level: num('level'),
      mpp: num('mpp'),
      tissue: num('tissue'),
      shard: r[idx('shard')],
      offset: num('offset'),
      length: num('length'),
      anomalyFraction: fractionAt < 0 || r[fractionAt] === '' ? undefined : Number(r[fractionAt]),
    };
  });
}

/** Opens a finished tile dataset folder. */
export async function openTileDataset(dir: string): Promise<TileDataset> {
  const metaPath = join(dir, 'dataset.json');
  if (!existsSync(dir)) throw new DatasetError(dir, 'dataset folder does not exist');
  if (!existsSync(metaPath)) throw new DatasetError(dir, 'not a tile dataset (no dataset.json); create one with `gradelab tile`');
  const meta = readDatasetMeta(dir);
  if (!meta.complete || !existsSync(join(dir, 'tiles.csv'))) {
    throw new DatasetError(dir, 'tiling did not finish; run the same `gradelab tile` command again to resume');
  }
  let rows: string[][];
  try {
    const table = await readFile(join(dir, 'tiles.csv'), 'utf8');
    meta.sha256 ??= datasetSha256(meta, table);
    rows = parse(table);
  } catch (err) {
    throw new DatasetError(join(dir, 'tiles.csv'), `not valid CSV: ${(err as Error).message}`);
  }
  if (rows.length === 0) throw new DatasetError(join(dir, 'tiles.csv'), 'empty file');
  return { dir, meta: { ...meta, manifest: resolve(dir, meta.manifest) }, tiles: rowsToTiles(dir, rows) };
}

/**
 * Opens a dataset to apply a model to it, refusing tiles the model was not trained for (another task,
 * tile size or resolution; with `resample`, another tile size over the same field of view).
 */
export async function openDatasetForModel(dir: string, modelDir: string, options: { resample?: boolean } = {}): Promise<TileDataset> {
  const meta = readModelMeta(modelDir);
  const ds = await openTileDataset(dir);
  checkModelFitsTiles(modelDir, meta, { where: dir, ...ds.meta }, options);
  return ds;
}

/** Reads and decodes one tile's pixels. */
export async function readDatasetTile(ds: TileDataset, tile: TileRow, reader: ShardReader): Promise<RgbImage> {
  const path = join(ds.dir, tile.shard);
  const bytes = await reader.read(path, tile.offset, tile.length);
  return decodeTile(bytes, ds.meta.encoding, ds.meta.tileSize, `${path} at byte ${tile.offset}`);
}
