import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { ClaimBoard, DatasetError, guardedTempPath, nameFileOnError, writeFileAtomic } from '../core/index.ts';
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
import { INDEX_MASK_COLUMNS, type MaskScheme } from './labelMasks.ts';
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
  /**
   * How the manifest's label masks name tissue: given, every tile stores its class shares. PANDA's masks
   * follow their provider and are read without it. Without either, masks give only the anomalous share.
   */
  maskScheme?: MaskScheme;
}

export interface SlideResult {
  status: 'done' | 'skipped-existing' | 'failed';
  tiles: number;
  error?: string;
}

/** What one process did in a worker's pass (`gradelab tile --claim-only`, a SLURM array task). */
export interface WorkerPass {
  /** Slides this process tiled (or recorded as failed). */
  tiled: number;
  /** Slides already finished when looked at. */
  finished: number;
  /** Slides other live processes held when this one stopped: theirs to finish. */
  heldElsewhere: number;
}

/** A tiling of one folder as every role sees it: the settings, the claims and the table's header. */
interface Tiling {
  manifest: Manifest;
  options: BuildOptions;
  meta: TileDatasetMeta;
  board: ClaimBoard;
  header: string[];
}

/**
 * Checks the folder against the settings (another tiling, or live processes of another run, are refused
 * before anything is written) and writes dataset.json, unfinished, with the folders the slides go to.
 */
async function startTiling(manifest: Manifest, options: BuildOptions): Promise<Tiling> {
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
    ...maskSchemeOf(manifest, options),
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
  // Mask columns only where tiles carry classes: a dataset without keeps the table (and identity) it had.
  const header = [
    ...INDEX_TABLE_COLUMNS(manifest.labelColumns),
    ...(meta.maskScheme ? INDEX_MASK_COLUMNS : []),
    ...(coords ? INDEX_COORDS_COLUMNS : []),
  ];
  return { manifest, options, meta, board, header };
}

/**
 * The mask scheme a prostate dataset records when its tiles store class shares: PANDA's per provider
 * when any of its masks was found, or the one given for a manifest's masks (reading a mask per tile costs
 * time, so a manifest's masks are read for classes only when asked). Breast masks give only the
 * anomalous share, as before.
 */
function maskSchemeOf(manifest: Manifest, options: BuildOptions): { maskScheme?: TileDatasetMeta['maskScheme'] } {
  if (manifest.task !== 'prostate' || !manifest.records.some((r) => r.maskPath)) return {};
  if (manifest.format === 'panda') return { maskScheme: 'panda' };
  return options.maskScheme ? { maskScheme: options.maskScheme } : {};
}

/**
 * Works through the slides: finished ones give their slides.csv row, free (or stale) ones are claimed and
 * tiled. With `wait`, slides other live processes hold are waited for until every slide is finished;
 * without, the pass ends when nothing is left to claim (a worker: another process finishes the rest).
 */
async function workThroughSlides(t: Tiling, wait: boolean): Promise<{ rows: Map<number, string[]> } & WorkerPass> {
  const { manifest, options, meta, board, header } = t;
  const out = options.out;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const rows = new Map<number, string[]>();
  const total = manifest.records.length;
  let tiled = 0;
  let pending = manifest.records.map((_, i) => i);
  while (pending.length) {
    const waiting: number[] = [];
    let claimed = 0;
    for (const si of pending) {
      const rec = manifest.records[si];
      if (isFinished(out, rec)) {
        rows.set(si, await finishedSlideRow(out, rec, si, total, options));
        continue;
      }
      const claim = board.tryClaim(slideFileName(rec.slideId));
      if (!claim) {
        waiting.push(si);
        continue;
      }
      claimed++;
      try {
        // Another process may have finished it between the look and the claim.
        if (isFinished(out, rec)) rows.set(si, await finishedSlideRow(out, rec, si, total, options));
        else {
          rows.set(si, await tileSlide(rec, si, manifest, meta, header, { ...options, out, concurrency }));
          tiled++;
        }
      } finally {
        claim.release();
      }
    }
    pending = waiting;
    if (!pending.length || (!wait && !claimed)) break;
    // Every slide left is another live process's: wait for it (or for its claim to go stale).
    if (!claimed) await sleep(options.pollMs ?? 1000);
  }
  return { rows, tiled, finished: rows.size - tiled, heldElsewhere: pending.length };
}

/**
 * Tiles every slide of a manifest into a dataset folder: dataset.json, tiles.parquet (the tile index),
 * slides.csv and one shard per slide under shards/. Each slide is committed on its own (shard, then its
 * rows under rows/), so re-running skips finished slides; the index appears only when all are done.
 */
export async function buildTileDataset(manifest: Manifest, options: BuildOptions): Promise<TileDataset> {
  const tiling = await startTiling(manifest, options);
  const { rows } = await workThroughSlides(tiling, true);
  return writeIndex(tiling, rows);
}

/**
 * One worker of many (`gradelab tile --claim-only`, a SLURM array task): tiles the slides it can claim
 * and stops when none is left free, leaving the index to `finishTileDataset` (the array's last job).
 */
export async function tileAsWorker(manifest: Manifest, options: BuildOptions): Promise<WorkerPass> {
  const { tiled, finished, heldElsewhere } = await workThroughSlides(await startTiling(manifest, options), false);
  return { tiled, finished, heldElsewhere };
}

/**
 * Writes the index of a folder its workers have tiled (`gradelab tile --finish`): refused, in one line
 * naming the unfinished slides and who holds them, until every slide is finished.
 */
export async function finishTileDataset(manifest: Manifest, options: BuildOptions): Promise<TileDataset> {
  const tiling = await startTiling(manifest, options);
  const unfinished = manifest.records.filter((rec) => !isFinished(options.out, rec));
  if (unfinished.length) {
    const named = unfinished
      .slice(0, 5)
      .map((rec) => `${rec.slideId} (${tiling.board.describe(slideFileName(rec.slideId)) ?? 'not started'})`)
      .join(', ');
    throw new DatasetError(
      options.out,
      `${unfinished.length} of ${manifest.records.length} slides are not tiled yet: ${named}${unfinished.length > 5 ? ', ...' : ''}; run the workers again (the same \`gradelab slurm submit\`, or \`gradelab tile\` with the same flags)`,
    );
  }
  const total = manifest.records.length;
  const rows = new Map<number, string[]>();
  for (const [si, rec] of manifest.records.entries()) rows.set(si, await finishedSlideRow(options.out, rec, si, total, options));
  return writeIndex(tiling, rows);
}

/** The tile index and slides.csv from every slide's committed rows; dataset.json says complete last. */
async function writeIndex(t: Tiling, slideRows: Map<number, string[]>): Promise<TileDataset> {
  const { manifest, meta, board, header } = t;
  const out = t.options.out;
  const pollMs = t.options.pollMs ?? 1000;
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
    await sleep(pollMs);
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
    await writeFileAtomic(join(out, 'dataset.json'), JSON.stringify(meta, null, 2));
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
      const named = nameFileOnError(join(out, 'tiles.csv'));
      await fh.write(headerLine).catch(named);
      hash.update(headerLine);
      for await (const part of rows) {
        await fh.write(part).catch(named);
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
