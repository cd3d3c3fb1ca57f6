import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { DatasetError, guardedTempPath, isUserError, writeFileAtomic } from '../core/index.ts';
import type { Manifest, SlideRecord } from './manifest.ts';
import { openSlide } from './openSlide.ts';
import type { SlideSource } from './slide.ts';
import { ShardWriter } from './shards.ts';
import type { TileStore } from './tileReader.ts';
import { planSlideTiles, storedTileBytes } from './slideTiles.ts';
import { INDEX_COORDS_COLUMNS, INDEX_FILE, writeIndexFromCsv } from './tileIndex.ts';
import {
  DATASET_VERSION,
  slideColumns,
  slideFileName,
  datasetHasher,
  INDEX_TABLE_COLUMNS,
  openTileDataset,
  readDatasetMeta,
  settingsOf,
  type TileDataset,
  type TileDatasetMeta,
} from './tileDataset.ts';
import type { TissueMethod } from './tissue.ts';
import { maskFraction, type TilingOptions } from './tiling.ts';

export interface BuildOptions extends TilingOptions {
  out: string;
  encoding?: TileStore;
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

/** The microns per pixel a slide was tiled with and where it came from: the manifest row, the file, or --slide-mpp. */
function slideMppUsed(rec: SlideRecord, slide: SlideSource, override: number | undefined): [string, string] {
  if (rec.mpp !== undefined) return [String(rec.mpp), 'manifest'];
  if (slide.mpp !== undefined) return [String(slide.mpp), 'file'];
  return override === undefined ? ['', ''] : [String(override), '--slide-mpp'];
}

/**
 * Tiles every slide of a manifest into a dataset folder: dataset.json, tiles.parquet (the tile index),
 * slides.csv and one shard per slide under shards/. Each slide is committed on its own (shard, then its
 * rows under rows/), so re-running skips finished slides; the index appears only when all are done.
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
  const coords = meta.encoding === 'coords';
  if (!coords) await mkdir(join(out, 'shards'), { recursive: true });
  await mkdir(join(out, 'rows'), { recursive: true });
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  await rm(join(out, INDEX_FILE), { force: true });

  const header = [...INDEX_TABLE_COLUMNS(manifest.labelColumns), ...(coords ? INDEX_COORDS_COLUMNS : [])];
  const slideRows: string[][] = [];
  const concurrency = Math.max(1, options.concurrency ?? 4);

  for (let si = 0; si < manifest.records.length; si++) {
    const rec = manifest.records[si];
    const name = slideFileName(rec.slideId);
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
        // A coordinates-only dataset keeps no pixels: its rows name the slide and the region to read.
        const encoding = meta.encoding;
        shard = encoding === 'coords' ? undefined : await ShardWriter.create(join(out, shardRel));
        const slideRel = relative(out, rec.path).split(sep).join('/');
        const rows: string[][] = [];
        const tileMpp = grid.slideMpp * grid.downsample;
        for (let i = 0; i < grid.tiles.length; i += concurrency) {
          const batch = grid.tiles.slice(i, i + concurrency);
          const encoded =
            encoding === 'coords' ? [] : await Promise.all(batch.map((t) => storedTileBytes(slide, t, { ...meta, encoding })));
          for (let k = 0; k < batch.length; k++) {
            const t = batch[k];
            const { offset, length } = shard ? await shard.append(encoded[k]) : { offset: 0, length: 0 };
            const fraction = labelMask
              ? (await maskFraction(labelMask, t.x, t.y, meta.tileSize * grid.downsample)).toFixed(3)
              : rec.anomaly
                ? ''
                : '0';
            rows.push([
              ...slideColumns(rec, manifest.labelColumns),
              String(t.x),
              String(t.y),
              String(t.level),
              tileMpp.toFixed(4),
              t.tissue.toFixed(3),
              shard ? shardRel : '',
              String(offset),
              String(length),
              fraction,
              ...(coords ? [slideRel, String(t.readSize)] : []),
            ]);
            options.onTile?.();
          }
        }
        await shard?.commit();
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

  const headerLine = stringify([header]);
  async function* slideRowsInOrder(): AsyncGenerator<string> {
    for (const rec of manifest.records) {
      const p = join(out, 'rows', `${slideFileName(rec.slideId)}.csv`);
      if (!existsSync(p)) continue;
      const text = await readFile(p, 'utf8');
      if (!text.startsWith(headerLine)) throw new DatasetError(p, "its header is not the dataset's: remove the folder and tile again");
      yield text.slice(headerLine.length);
    }
  }
  meta.tiles = await writeTileTable(out, meta, manifest.labelColumns, header, slideRowsInOrder());
  await writeFileAtomic(
    join(out, 'slides.csv'),
    stringify([
      ['slide_id', 'patient_id', 'site', 'scanner', 'grade', 'status', 'tiles', 'error', 'slide_mpp', 'mpp_source'],
      ...slideRows,
    ]),
  );
  meta.complete = true;
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  return openTileDataset(out);
}

/**
 * The tile table from CSV row text (no header) in table order, streamed through a temporary CSV (hashed
 * on the way: the dataset's identity, stored in meta.sha256) into the Parquet index; no table is ever
 * held whole in memory. Returns the row count.
 */
export async function writeTileTable(
  out: string,
  meta: TileDatasetMeta,
  labelColumns: readonly string[],
  header: readonly string[],
  rows: AsyncIterable<string> | Iterable<string>,
): Promise<number> {
  const { tmp, release } = guardedTempPath(join(out, 'tiles.csv'));
  const hash = datasetHasher(meta);
  try {
    const fh = await open(tmp, 'r+');
    try {
      const headerLine = stringify([header]);
      await fh.write(headerLine);
      hash.update(headerLine);
      for await (const part of rows) {
        await fh.write(part);
        hash.update(part);
      }
    } finally {
      await fh.close();
    }
    const n = await writeIndexFromCsv(tmp, join(out, INDEX_FILE), labelColumns);
    meta.sha256 = hash.digest('hex');
    return n;
  } finally {
    await rm(tmp, { force: true });
    release();
  }
}
