import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { isUserError, writeFileAtomic } from '../core/index.ts';
import type { Manifest, SlideRecord } from './manifest.ts';
import { openSlide } from './openSlide.ts';
import type { SlideSource } from './slide.ts';
import { ShardWriter } from './shards.ts';
import { planSlideTiles, storedTileBytes } from './slideTiles.ts';
import { slideColumns, slideFileName, type TileDatasetMeta } from './tileDataset.ts';
import { anomalousShare, maskRegion } from './tiling.ts';
import { checkLabelMask, maskShareCells, maskShares, type MaskScheme } from './labelMasks.ts';
import type { BuildOptions } from './tileBuilder.ts';

/** A slide's committed tile rows (the last file a slide's tiling writes), and its failure record. */
const rowsPath = (out: string, rec: SlideRecord) => join(out, 'rows', `${slideFileName(rec.slideId)}.csv`);
const failedPath = (out: string, rec: SlideRecord) => join(out, 'rows', `${slideFileName(rec.slideId)}.failed`);

/** Whether a slide is done: its rows committed, or its failure recorded (--skip-bad). */
export function isFinished(out: string, rec: SlideRecord): boolean {
  return existsSync(rowsPath(out, rec)) || existsSync(failedPath(out, rec));
}

/** The microns per pixel a slide was tiled with and where it came from: the manifest row, the file, or --slide-mpp. */
function slideMppUsed(rec: SlideRecord, slide: SlideSource, override: number | undefined): [string, string] {
  if (rec.mpp !== undefined) return [String(rec.mpp), 'manifest'];
  if (slide.mpp !== undefined) return [String(slide.mpp), 'file'];
  return override === undefined ? ['', ''] : [String(override), '--slide-mpp'];
}

const identity = (rec: SlideRecord) => [rec.slideId, rec.patientId, rec.site, rec.scanner, String(rec.grade ?? '')];

/** slides.csv's row of a slide finished earlier (by this process, a previous run or another process). */
export async function finishedSlideRow(out: string, rec: SlideRecord, si: number, total: number, options: BuildOptions): Promise<string[]> {
  options.onSlideStart?.(rec, si, total, 0);
  if (!existsSync(rowsPath(out, rec))) {
    const message = readFileSync(failedPath(out, rec), 'utf8');
    options.onSlideDone?.(rec, { status: 'failed', tiles: 0, error: message });
    return [...identity(rec), 'failed', '0', message, '', ''];
  }
  const n = Math.max(0, readFileSync(rowsPath(out, rec), 'utf8').split('\n').filter(Boolean).length - 1);
  options.onSlideDone?.(rec, { status: 'skipped-existing', tiles: n });
  const slide = await openSlide(rec.path, { id: rec.slideId });
  const used = slideMppUsed(rec, slide, options.slideMpp);
  await slide.close();
  return [...identity(rec), 'done', String(n), '', ...used];
}

/**
 * Removes what a killed worker left of a slide: its temp shard and rows (a claim holder calls this, so
 * no live process is writing them). Files are matched by the temp-name pattern of core's tempPathFor.
 */
function discardLeftovers(out: string, rec: SlideRecord): void {
  const name = slideFileName(rec.slideId);
  for (const [dir, file] of [
    ['shards', `${name}.bin`],
    ['rows', `${name}.csv`],
  ]) {
    if (!existsSync(join(out, dir))) continue;
    for (const f of readdirSync(join(out, dir)))
      if (f.startsWith(`.${file}.`) && f.endsWith('.tmp') && !f.startsWith(`.${file}.${process.pid}.`))
        rmSync(join(out, dir, f), { force: true });
  }
}

/**
 * Tiles one slide: its shard (unless coordinates only), then its rows, each committed by an atomic
 * rename, so a process killed mid-slide leaves nothing that looks finished and the slide is redone.
 * A slide that cannot be read is recorded as failed with --skip-bad (rows/NAME.failed). Returns its
 * slides.csv row.
 */
export async function tileSlide(
  rec: SlideRecord,
  si: number,
  manifest: Manifest,
  meta: TileDatasetMeta,
  header: string[],
  options: BuildOptions & { concurrency: number },
): Promise<string[]> {
  const { out, concurrency } = options;
  const coords = meta.encoding === 'coords';
  const shardRel = `shards/${slideFileName(rec.slideId)}.bin`;
  let shard: ShardWriter | undefined;
  discardLeftovers(out, rec);
  try {
    const slide = await openSlide(rec.path, { id: rec.slideId });
    let labelMask: SlideSource | undefined;
    try {
      const { grid } = await planSlideTiles(slide, meta, rec.mpp ?? (slide.mpp === undefined ? options.slideMpp : undefined));
      // A label mask gives anomalous slides each tile's anomalous share (tile-level OOD truth) and, in a
      // dataset that records a mask scheme, every tile's tissue classes (pattern supervision).
      const scheme = rec.maskPath && meta.maskScheme ? (rec.maskScheme ?? (meta.maskScheme as MaskScheme)) : undefined;
      if (rec.maskPath && (rec.anomaly || scheme)) labelMask = await openSlide(rec.maskPath, { id: `${rec.slideId}-mask` });
      if (labelMask && scheme) await checkLabelMask(labelMask, slide, scheme, rec.maskPath!);
      options.onSlideStart?.(rec, si, manifest.records.length, grid.tiles.length);
      // A coordinates-only dataset keeps no pixels: its rows name the slide and the region to read.
      const encoding = meta.encoding;
      shard = coords ? undefined : await ShardWriter.create(join(out, shardRel));
      const slideRel = relative(out, rec.path).split(sep).join('/');
      const rows: string[][] = [];
      const tileMpp = grid.slideMpp * grid.downsample;
      for (let i = 0; i < grid.tiles.length; i += concurrency) {
        const batch = grid.tiles.slice(i, i + concurrency);
        const encoded = encoding === 'coords' ? [] : await Promise.all(batch.map((t) => storedTileBytes(slide, t, { ...meta, encoding })));
        for (let k = 0; k < batch.length; k++) {
          const t = batch[k];
          const { offset, length } = shard ? await shard.append(encoded[k]) : { offset: 0, length: 0 };
          const region = labelMask ? await maskRegion(labelMask, t.x, t.y, meta.tileSize * grid.downsample) : undefined;
          const fraction = region ? anomalousShare(region).toFixed(3) : rec.anomaly ? '' : '0';
          const shares = region && scheme ? maskShares(region.data, scheme, rec.maskPath!) : undefined;
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
            ...(meta.maskScheme ? maskShareCells(shares) : []),
            ...(coords ? [slideRel, String(t.readSize)] : []),
          ]);
          options.onTile?.();
        }
      }
      await shard?.commit();
      shard = undefined;
      await writeFileAtomic(rowsPath(out, rec), stringify([header, ...rows]));
      options.onSlideDone?.(rec, { status: 'done', tiles: rows.length });
      return [...identity(rec), 'done', String(rows.length), '', ...slideMppUsed(rec, slide, options.slideMpp)];
    } finally {
      await labelMask?.close();
      await slide.close();
    }
  } catch (err) {
    await shard?.abort();
    if (!options.skipBad || !isUserError(err)) throw err;
    const message = (err as Error).message;
    await writeFileAtomic(failedPath(out, rec), message);
    options.onSlideDone?.(rec, { status: 'failed', tiles: 0, error: message });
    return [...identity(rec), 'failed', '0', message, '', ''];
  }
}

/** Starting a new round on a finished dataset: slides that failed are tried again, as a fresh run would. */
export function failedMarkers(out: string, manifest: Manifest): string[] {
  return manifest.records.map((rec) => failedPath(out, rec)).filter((p) => existsSync(p));
}
