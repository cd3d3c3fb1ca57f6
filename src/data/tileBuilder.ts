import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { ClaimBoard, DatasetError, guardedTempPath, writeFileAtomic } from '../core/index.ts';
import type { Manifest, SlideRecord } from './manifest.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TileStore } from './tileReader.ts';
import { failedMarkers, finishedSlideRow, isFinished, tileSlide } from './tileSlide.ts';
import { INDEX_COORDS_COLUMNS, INDEX_FILE, writeIndexFromCsv } from './tileIndex.ts';
import {
  DATASET_VERSION,
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
import type { TilingOptions } from './tiling.ts';

/** The claim on writing the index: '~' never appears in a slide's file name, so no slide can hold it. */
const INDEX_CLAIM = '~index';

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
  /** Another host's claim whose heartbeat is older than this is taken over (default 5 minutes). */
  staleAfterMs?: number;
  /** How often a process with nothing left to claim looks again (default 1 s). */
  pollMs?: number;
}

export interface SlideResult {
  status: 'done' | 'skipped-existing' | 'failed';
  tiles: number;
  error?: string;
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
    // A finished dataset tiled again is a new round: slides that failed are tried again.
    if (prev.complete) for (const f of failedMarkers(out, manifest)) await rm(f, { force: true });
  }
  // Any number of processes may tile one folder: each slide is claimed by one at a time. A folder that
  // live processes are tiling with other settings is refused before anything is written.
  const board = new ClaimBoard(join(out, 'claims'), {
    run: `tile ${createHash('sha256')
      .update(JSON.stringify(settingsOf(meta)))
      .digest('hex')
      .slice(0, 16)}`,
    staleAfterMs: options.staleAfterMs,
  });
  board.checkRun();
  const coords = meta.encoding === 'coords';
  if (!coords) await mkdir(join(out, 'shards'), { recursive: true });
  await mkdir(join(out, 'rows'), { recursive: true });
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  await rm(join(out, INDEX_FILE), { force: true });

  const header = [...INDEX_TABLE_COLUMNS(manifest.labelColumns), ...(coords ? INDEX_COORDS_COLUMNS : [])];
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const slideRows = new Map<number, string[]>();
  const tile = (rec: SlideRecord, si: number) => tileSlide(rec, si, manifest, meta, header, { ...options, out, concurrency });
  let pending = manifest.records.map((_, i) => i);
  while (pending.length) {
    const waiting: number[] = [];
    for (const si of pending) {
      const rec = manifest.records[si];
      if (isFinished(out, rec)) {
        slideRows.set(si, await finishedSlideRow(out, rec, si, manifest.records.length, options));
        continue;
      }
      const claim = board.tryClaim(slideFileName(rec.slideId));
      if (!claim) {
        waiting.push(si);
        continue;
      }
      try {
        // Another process may have finished it between the look and the claim.
        slideRows.set(
          si,
          isFinished(out, rec) ? await finishedSlideRow(out, rec, si, manifest.records.length, options) : await tile(rec, si),
        );
      } finally {
        claim.release();
      }
    }
    // Every slide left is another live process's: wait for it (or for its claim to go stale).
    if (waiting.length) await sleep(options.pollMs ?? 1000);
    pending = waiting;
  }
  meta.failedSlides = [...slideRows.values()].filter((row) => row[5] === 'failed').length;

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
  // One process at a time writes the index (each from the same committed slides: the same bytes).
  let finalise = board.tryClaim(INDEX_CLAIM);
  while (!finalise) {
    await sleep(options.pollMs ?? 1000);
    finalise = board.tryClaim(INDEX_CLAIM);
  }
  try {
    meta.tiles = await writeTileTable(out, meta, manifest.labelColumns, header, slideRowsInOrder());
    await writeFileAtomic(
      join(out, 'slides.csv'),
      stringify([
        ['slide_id', 'patient_id', 'site', 'scanner', 'grade', 'status', 'tiles', 'error', 'slide_mpp', 'mpp_source'],
        ...manifest.records.map((_, si) => slideRows.get(si)!),
      ]),
    );
    meta.complete = true;
    await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2));
  } finally {
    finalise.release();
  }
  board.removeIfEmpty();
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
