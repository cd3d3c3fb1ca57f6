import { createHash, type Hash } from 'node:crypto';
import { accessSync, constants, createReadStream, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import {
  checkModelFitsTiles,
  DatasetError,
  loadJsonFile,
  log,
  readModelMeta,
  tempFileGuard,
  tempPathFor,
  writeFileAtomic,
  type RgbImage,
  type Task,
} from '../core/index.ts';
import type { SlideIdentity, SlideRecord } from './manifest.ts';
import type { TileReader, TileStore } from './tileReader.ts';
import {
  checkIndex,
  INDEX_FILE,
  INDEX_SLIDE_COLUMNS,
  INDEX_TILE_COLUMNS,
  queryRows,
  readIndexRows,
  sqlString,
  writeIndexFromCsv,
  type TileFilter,
} from './tileIndex.ts';
import type { TissueMethod } from './tissue.ts';

/**
 * 2: the tile table is tiles.parquet (the tile index). 1: tiles.csv, converted to the index on first
 * open (a cohort's tiles.csv took 41 s and 1.2 GB to open at 10^6 tiles and could not be read at 5 x 10^6).
 */
export const DATASET_VERSION = 2;
const CSV_DATASET_VERSION = 1;

/** The tile table's columns in order, with the manifest's label columns after the slide's. */
export const INDEX_TABLE_COLUMNS = (labelColumns: readonly string[]) => [...INDEX_SLIDE_COLUMNS, ...labelColumns, ...INDEX_TILE_COLUMNS];

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
    /** How tiles are kept: JPEG or raw RGB in shards, or coordinates only (pixels read from the slide). */
    encoding: z.enum(['jpeg', 'raw', 'coords']),
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
    /** Datasets made from another toolkit's patch coordinates (gradelab dataset import). */
    importedFrom: z
      .object({ tool: z.enum(['clam', 'trident']), patches: z.string() })
      .strict()
      .optional(),
    /**
     * How label masks name tissue, when slides had masks and each tile's class shares were stored
     * (mask_* columns): one scheme for a manifest's masks, or 'panda' (each provider's own).
     */
    maskScheme: z.enum(['radboud', 'karolinska', 'gradelab', 'panda']).optional(),
    /** False until every slide is tiled and the tile index is written. */
    complete: z.boolean(),
    slides: z.number().int().min(0),
    tiles: z.number().int().min(0),
    failedSlides: z.number().int().min(0),
  })
  .strict();
export type TileDatasetMeta = z.infer<typeof datasetMetaSchema> & { task: Task; tissueMethod: TissueMethod; encoding: TileStore };

/**
 * Reads a dataset's dataset.json: its version first (a newer gradelab may write another shape), then
 * every field; a file cut short or edited by hand is one line naming it and the field.
 */
export function readDatasetMeta(dir: string): TileDatasetMeta {
  const path = join(dir, 'dataset.json');
  const raw = loadJsonFile(path, z.object({ version: z.unknown() }).loose(), 'dataset description');
  if (raw.version !== DATASET_VERSION && raw.version !== CSV_DATASET_VERSION)
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
  /**
   * The tile's tissue classes from its slide's label mask, as shares of its footprint (data/labelMasks.ts):
   * benign, cancer, and cancer by Gleason pattern where the mask says; undefined without a mask.
   */
  maskBenign?: number;
  maskCancer?: number;
  maskG3?: number;
  maskG4?: number;
  maskG5?: number;
  /** Coordinates store: the slide's path and the region read at `level` (resampled to the tile size). */
  slidePath?: string;
  readSize?: number;
}

/** A dataset opened without its rows: settings and the path of its tile index, for queries in place. */
export interface TileDatasetIndex {
  dir: string;
  meta: TileDatasetMeta;
  /** The Parquet tile index (tiles.parquet, or a temporary conversion of a read-only CSV dataset). */
  index: string;
}

export interface TileDataset extends TileDatasetIndex {
  /** The tiles read (all of them, or those a filter kept), in table order; `index` is the table row. */
  tiles: TileRow[];
}

/** A tile row's slide part, in table order: id, patient, site, scanner, grade, label columns, anomaly. */
export function slideColumns(rec: SlideRecord, labelColumns: readonly string[]): string[] {
  return [
    rec.slideId,
    rec.patientId,
    rec.site,
    rec.scanner,
    String(rec.grade ?? ''),
    ...labelColumns.map((c) => rec.labels[c] ?? ''),
    rec.anomaly,
  ];
}

/** A slide's id as a file name (shards, per-slide rows, embeddings): a hash suffix keeps ids that sanitise alike ("a/b", "a_b") apart. */
export function slideFileName(slideId: string): string {
  const base = slideId.replace(/[^A-Za-z0-9._-]/g, '_');
  return base === slideId ? base : `${base}-${createHash('sha1').update(slideId).digest('hex').slice(0, 8)}`;
}

/** A dataset's tiling as a model records it (the tiles it was trained on), so slides are graded alike. */
export function tilingOf(meta: TileDatasetMeta): {
  stride: number;
  minTissue: number;
  tissueMethod: TissueMethod;
  encoding: TileStore;
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

/**
 * The dataset's identity: its settings and its tile table (as CSV, in table order), hashed together.
 * Fed the table in pieces, so a table of any size is hashed without holding it.
 */
export function datasetHasher(meta: TileDatasetMeta): Hash {
  return createHash('sha256')
    .update(JSON.stringify(settingsOf(meta)))
    .update('\n');
}

/** The settings two tilings of one folder must share. */
export function settingsOf(meta: TileDatasetMeta) {
  const { tileSize, mpp, stride, minTissue, tissueMethod, encoding, quality, manifestSha256, slideMpp, maskScheme } = meta;
  return {
    tileSize,
    mpp,
    stride,
    minTissue,
    tissueMethod,
    encoding,
    quality,
    manifestSha256,
    slideMpp: slideMpp ?? null,
    // Only when set: datasets without masks keep the identity they had before masks were read.
    ...(maskScheme ? { maskScheme } : {}),
  };
}

function isWritable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function sha256OfCsvTable(meta: TileDatasetMeta, csv: string): Promise<string> {
  const hash = datasetHasher(meta);
  for await (const chunk of createReadStream(csv)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A version-1 dataset (tiles.csv) gets its Parquet index: in its folder, once, with a line saying so
 * (dataset.json moves to version 2 and tiles.csv goes; `gradelab dataset export --format csv` writes it
 * again); or, for a folder this user cannot write, in a temporary file for this run only.
 */
async function indexCsvDataset(dir: string, meta: TileDatasetMeta): Promise<{ meta: TileDatasetMeta; index: string }> {
  const csv = join(dir, 'tiles.csv');
  if (!existsSync(csv)) throw new DatasetError(dir, 'tiling did not finish; run the same `gradelab tile` command again to resume');
  const sha256 = meta.sha256 ?? (await sha256OfCsvTable(meta, csv));
  if (!isWritable(dir)) {
    const index = tempPathFor(join(tmpdir(), `gradelab-${sha256.slice(0, 16)}.parquet`));
    tempFileGuard(index);
    log.info(`${dir}: read-only dataset of gradelab 0.1 (tiles.csv); indexing it for this run only`);
    await writeIndexFromCsv(csv, index, meta.labelColumns);
    return { meta: { ...meta, sha256 }, index };
  }
  log.info(`${dir}: converting tiles.csv (${meta.tiles} tiles) to the tile index tiles.parquet, once`);
  const index = join(dir, INDEX_FILE);
  await writeIndexFromCsv(csv, index, meta.labelColumns);
  const upgraded = { ...meta, version: DATASET_VERSION, sha256 };
  await writeFileAtomic(join(dir, 'dataset.json'), JSON.stringify(upgraded, null, 2));
  await rm(csv, { force: true });
  return { meta: upgraded, index };
}

/**
 * Opens a finished tile dataset without reading its rows: dataset.json and the checked tile index, which
 * queries (dataset info, split, filters) read in place. A dataset of gradelab 0.1 is indexed first.
 */
export async function openTileIndex(dir: string): Promise<TileDatasetIndex> {
  const metaPath = join(dir, 'dataset.json');
  if (!existsSync(dir)) throw new DatasetError(dir, 'dataset folder does not exist');
  if (!existsSync(metaPath)) throw new DatasetError(dir, 'not a tile dataset (no dataset.json); create one with `gradelab tile`');
  let meta = readDatasetMeta(dir);
  if (!meta.complete) throw new DatasetError(dir, 'tiling did not finish; run the same `gradelab tile` command again to resume');
  let index = join(dir, INDEX_FILE);
  if (meta.version === CSV_DATASET_VERSION) ({ meta, index } = await indexCsvDataset(dir, meta));
  else if (!existsSync(index)) throw new DatasetError(dir, `${INDEX_FILE} is missing: tile the slides again`);
  await checkIndex(index, meta.tiles, meta.labelColumns, meta.encoding === 'coords');
  await checkIndexFiles(dir, index, meta.encoding === 'coords');
  return { dir, meta: { ...meta, manifest: resolve(dir, meta.manifest) }, index };
}

/**
 * Every shard (or, for a coordinates-only dataset, every slide) the index names must exist: an index
 * moved without them, or slides moved away, is one line naming the first missing file before any work.
 */
async function checkIndexFiles(dir: string, index: string, coords: boolean): Promise<void> {
  const column = coords ? 'slide_path' : 'shard';
  const files = await queryRows(`SELECT DISTINCT ${column} FROM read_parquet(${sqlString(index)})`, index);
  for (const [file] of files) {
    const path = resolve(dir, String(file));
    if (!existsSync(path))
      throw new DatasetError(
        index,
        `names ${coords ? 'the slide' : 'the shard'} ${String(file)}, which is not there (${path})${coords ? ': a coordinates-only dataset reads its slides at use' : ''}`,
      );
  }
}

/** True when `dir` holds a finished tile dataset (of either version). */
export function isTileDataset(dir: string): boolean {
  if (!existsSync(join(dir, 'dataset.json'))) return false;
  try {
    const meta = readDatasetMeta(dir);
    return meta.complete && existsSync(join(dir, meta.version === CSV_DATASET_VERSION ? 'tiles.csv' : INDEX_FILE));
  } catch {
    return false;
  }
}

/** Opens a finished tile dataset with its tiles (those `filter` keeps, when given: read in DuckDB, not here). */
export async function openTileDataset(dir: string, filter?: TileFilter): Promise<TileDataset> {
  const ds = await openTileIndex(dir);
  const coords = ds.meta.encoding === 'coords' ? { dir } : undefined;
  return { ...ds, tiles: await readIndexRows(ds.index, ds.meta.labelColumns, filter, coords) };
}

/**
 * Opens a dataset to apply a model to it, refusing tiles the model was not trained for (another task,
 * tile size or resolution; with `resample`, another tile size over the same field of view).
 */
export async function openDatasetForModel(
  dir: string,
  modelDir: string,
  options: { resample?: boolean; filter?: TileFilter } = {},
): Promise<TileDataset> {
  const meta = readModelMeta(modelDir);
  const ds = await openTileDataset(dir, options.filter);
  checkModelFitsTiles(modelDir, meta, { where: dir, ...ds.meta }, options);
  return ds;
}

/** One tile's pixels as a model sees them: decoded from its shard, or read from its slide (coordinates store). */
export async function readDatasetTile(ds: TileDatasetIndex, tile: TileRow, reader: TileReader): Promise<RgbImage> {
  return reader.read({ dir: ds.dir, encoding: ds.meta.encoding, tileSize: ds.meta.tileSize }, tile);
}
