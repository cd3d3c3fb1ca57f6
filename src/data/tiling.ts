import sharp from 'sharp';
import { InputError, type RgbImage } from '../core/index.ts';
import { bestLevelForDownsample, type SlideSource } from './slide.ts';
import { tissueFraction, type TissueMask } from './tissue.ts';

export interface TilingOptions {
  /** Output tile side in pixels. */
  tileSize: number;
  /** Target microns per pixel of the output tiles. */
  mpp: number;
  /** Step between tile origins in output pixels (default tileSize: no overlap). */
  stride?: number;
  /** Keep tiles with at least this tissue share (0..1). */
  minTissue?: number;
  /** Slide mpp to use when the file does not say (or to override it). */
  slideMpp?: number;
}

export interface TilePlan {
  /** Level-0 origin. */
  x: number;
  y: number;
  /** Level read from, and the region size read there before resampling to tileSize. */
  level: number;
  readSize: number;
  tissue: number;
}

export interface TileGrid {
  tiles: TilePlan[];
  /** Level-0 pixels per output pixel. */
  downsample: number;
  level: number;
  readSize: number;
  slideMpp: number;
  /** Grid positions examined (before the tissue filter). */
  candidates: number;
}

export function slideMppOrFail(slide: SlideSource, override?: number): number {
  const mpp = override ?? slide.mpp;
  if (!mpp) {
    throw new InputError(
      `${slide.path ?? slide.id}: the slide does not record its microns per pixel; give it with --slide-mpp or an mpp column in the manifest`,
    );
  }
  return mpp;
}

/**
 * The grid of tiles at a target resolution: origins every stride*downsample level-0 pixels, read from
 * the most reduced level not coarser than the target (then resampled), kept where the tissue share
 * reaches minTissue.
 */
export function planTiles(slide: SlideSource, mask: TissueMask | undefined, options: TilingOptions): TileGrid {
  const { tileSize } = options;
  if (!Number.isInteger(tileSize) || tileSize < 8 || tileSize > 4096)
    throw new InputError(`tile size must be an integer 8-4096, got ${tileSize}`);
  const stride = options.stride ?? tileSize;
  if (!Number.isInteger(stride) || stride <= 0) throw new InputError(`stride must be a positive integer, got ${stride}`);
  if (!(options.mpp > 0)) throw new InputError(`target mpp must be positive, got ${options.mpp}`);
  const minTissue = options.minTissue ?? 0.5;
  const slideMpp = slideMppOrFail(slide, options.slideMpp);
  const downsample = options.mpp / slideMpp;
  if (downsample < 0.99) {
    throw new InputError(
      `${slide.path ?? slide.id}: target ${options.mpp} um/px is finer than the slide's ${slideMpp.toFixed(4)} um/px; gradelab does not upsample`,
    );
  }
  const level = bestLevelForDownsample(slide.levels, downsample);
  const readSize = Math.round((tileSize * downsample) / slide.levels[level].downsample);
  const span = tileSize * downsample;
  const step = stride * downsample;
  const { width, height } = slide.levels[0];
  const tiles: TilePlan[] = [];
  let candidates = 0;
  // Only whole tiles, except that a slide smaller than one tile still gives one (padded white).
  const count = (extent: number) => (span >= extent ? 1 : Math.floor((extent - span) / step + 1e-9) + 1);
  const nx = count(width);
  const ny = count(height);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      candidates++;
      const x0 = Math.round(i * step);
      const y0 = Math.round(j * step);
      const tissue = mask ? tissueFraction(mask, x0, y0, span, span) : 1;
      if (tissue >= minTissue && tissue > 0) tiles.push({ x: x0, y: y0, level, readSize, tissue });
    }
  }
  return { tiles, downsample, level, readSize, slideMpp, candidates };
}

/** Mask value gradelab's synthetic slides (and any mask following them) use for anomalous tissue. */
export const ANOMALY_MASK_VALUE = 6;

/** A tile's level-0 footprint in a label mask (read once for every share the tile stores). */
export function maskRegion(mask: SlideSource, x: number, y: number, span: number): Promise<RgbImage> {
  const side = Math.max(1, Math.round(span));
  return mask.readRegion(0, x, y, side, side);
}

/**
 * The share of a mask region holding `value`, by default the anomalous tissue's: a tile's truth for
 * tile-level OOD evaluation (an anomaly covers part of a slide, so the slide's label is not the tile's).
 */
export function anomalousShare(region: RgbImage, value = ANOMALY_MASK_VALUE): number {
  let hits = 0;
  for (let i = 0; i < region.data.length; i += 3) if (region.data[i] === value) hits++;
  return hits / (region.width * region.height);
}

/** Reads one planned tile and resamples it to tileSize x tileSize. */
export async function readTile(slide: SlideSource, plan: TilePlan, tileSize: number): Promise<RgbImage> {
  const region = await slide.readRegion(plan.level, plan.x, plan.y, plan.readSize, plan.readSize);
  if (plan.readSize === tileSize) return region;
  const buf = await sharp(region.data, { raw: { width: region.width, height: region.height, channels: 3 } })
    .resize(tileSize, tileSize, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width: tileSize, height: tileSize, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}
