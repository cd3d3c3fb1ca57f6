import type { RgbImage } from '../core/index.ts';
import { decodeTile, encodeTile } from './shards.ts';
import type { TileStore } from './tileReader.ts';
import type { SlideSource } from './slide.ts';
import { detectTissue, type TissueMask, type TissueMethod } from './tissue.ts';
import { planTiles, readTile, type TileGrid, type TilePlan } from './tiling.ts';

/** Everything that decides which tiles a slide gives and what their pixels are. */
export interface SlideTiling {
  tileSize: number;
  mpp: number;
  stride: number;
  minTissue: number;
  tissueMethod: TissueMethod;
  encoding: TileStore;
  quality: number;
}

/**
 * A slide's tiles as `gradelab tile` cuts them: the tissue mask, then the grid at the target resolution
 * kept where tissue reaches minTissue. Tiling a dataset and grading a slide directly (heatmaps) both
 * come here, so one slide gives the same tiles either way.
 */
export async function planSlideTiles(
  slide: SlideSource,
  tiling: SlideTiling,
  slideMpp?: number,
): Promise<{ grid: TileGrid; mask: TissueMask }> {
  const mask = await detectTissue(slide, { method: tiling.tissueMethod });
  const grid = planTiles(slide, mask, {
    tileSize: tiling.tileSize,
    mpp: tiling.mpp,
    stride: tiling.stride,
    minTissue: tiling.minTissue,
    slideMpp,
  });
  return { grid, mask };
}

/** One planned tile as a shard stores it: read, resampled to the tile size, encoded. */
export async function storedTileBytes(
  slide: SlideSource,
  plan: TilePlan,
  tiling: SlideTiling & { encoding: 'jpeg' | 'raw' },
): Promise<Uint8Array> {
  return encodeTile(await readTile(slide, plan, tiling.tileSize), tiling.encoding, tiling.quality);
}

/**
 * One planned tile's pixels exactly as a model sees them from a dataset: the storage codec applied, or,
 * for a coordinates-only dataset, the resampled region itself (what its tiles read at use).
 */
export async function storedTilePixels(slide: SlideSource, plan: TilePlan, tiling: SlideTiling): Promise<RgbImage> {
  if (tiling.encoding === 'coords') return readTile(slide, plan, tiling.tileSize);
  return decodeTile(await storedTileBytes(slide, plan, { ...tiling, encoding: tiling.encoding }), tiling.encoding, tiling.tileSize);
}
