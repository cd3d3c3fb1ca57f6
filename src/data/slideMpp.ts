import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { TileDataset } from './tileDataset.ts';

/**
 * Each tiled slide's native microns per pixel, as tiling recorded it in slides.csv (from the manifest,
 * the file or --slide-mpp). Empty for datasets without one (imported, or from before slides.csv had it).
 */
export function slideMppOf(ds: Pick<TileDataset, 'dir'>): Map<string, number> {
  const path = join(ds.dir, 'slides.csv');
  const out = new Map<string, number>();
  if (!existsSync(path)) return out;
  for (const row of parse(readFileSync(path, 'utf8'), { columns: true }) as Record<string, string>[]) {
    const mpp = Number(row.slide_mpp);
    if (row.slide_mpp && Number.isFinite(mpp) && mpp > 0) out.set(row.slide_id, mpp);
  }
  return out;
}

/** The range of native mpp over the given slides, or undefined when none is known. */
export function mppRange(mpp: Map<string, number>, slides: Iterable<string>): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of slides) {
    const v = mpp.get(s);
    if (v === undefined) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return Number.isFinite(lo) ? [lo, hi] : undefined;
}
