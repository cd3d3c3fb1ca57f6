import { blit, createImage, InputError, type RgbImage } from '../core/index.ts';

export interface SlideLevel {
  readonly width: number;
  readonly height: number;
  /** Level-0 pixels per pixel of this level. */
  readonly downsample: number;
}

export type SlideVendor = 'aperio' | 'generic-tiff' | 'image' | 'synthetic';

/** What every slide says about itself, whatever the format. */
export interface SlideProperties {
  readonly levels: readonly SlideLevel[];
  /** Microns per pixel at level 0 (mean of x and y), when the file says. */
  readonly mpp?: number;
  /** Microns per pixel along x and y separately, when the file says. */
  readonly mppX?: number;
  readonly mppY?: number;
  /** Raw properties as OpenSlide names them (openslide.*, aperio.*, tiff.*). */
  readonly properties?: Readonly<Record<string, string>>;
  readonly objectivePower?: number;
  readonly vendor: SlideVendor;
  /** Names of associated images (thumbnail, label, macro): not levels. */
  readonly associatedImages: readonly string[];
  readAssociatedImage(name: string): Promise<RgbImage>;
  close(): Promise<void>;
}

/**
 * A whole-slide image. `readRegion` follows OpenSlide: x, y are level-0 coordinates of the top-left
 * corner, w, h the size in pixels of the requested level; regions crossing the edge are padded white.
 */
export interface SlideSource extends SlideProperties {
  readonly id: string;
  readonly path?: string;
  readRegion(level: number, x: number, y: number, w: number, h: number): Promise<RgbImage>;
}

/** What a format reader implements: rectangles already clipped to the level, in level coordinates. */
export interface SlideReader extends SlideProperties {
  readLevelRect(level: number, x: number, y: number, w: number, h: number): Promise<RgbImage>;
}

/**
 * The largest region one call may ask for (10,000 x 10,000): 300 MB of RGB, so a read and the PNG it is
 * written to stay under 1 GB, below the pixel limits of every writer gradelab uses (libvips: 2^28).
 */
export const MAX_REGION_PIXELS = 100_000_000;

/**
 * Wraps a reader with the checks every format shares, done once here: level and size validation,
 * level-0 to level coordinates, clipping to the level and white padding outside it.
 */
export function checkedSlide(id: string, reader: SlideReader, path?: string, mppOverride?: number): SlideSource {
  const where = path ?? id;
  return {
    id,
    path,
    levels: reader.levels,
    mpp: mppOverride ?? reader.mpp,
    mppX: mppOverride ?? reader.mppX ?? reader.mpp,
    mppY: mppOverride ?? reader.mppY ?? reader.mpp,
    properties: reader.properties ?? {},
    objectivePower: reader.objectivePower,
    vendor: reader.vendor,
    associatedImages: reader.associatedImages,
    async readRegion(level, x, y, w, h) {
      if (!Number.isInteger(level) || level < 0 || level >= reader.levels.length) {
        throw new InputError(`${where}: level ${level} does not exist (levels 0..${reader.levels.length - 1})`);
      }
      if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) {
        throw new InputError(`${where}: region size must be positive integers, got ${w}x${h}`);
      }
      if (w * h > MAX_REGION_PIXELS) {
        throw new InputError(`${where}: region ${w}x${h} is larger than the ${MAX_REGION_PIXELS} pixel limit per read`);
      }
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        throw new InputError(`${where}: region origin must be finite, got (${x}, ${y})`);
      }
      const lv = reader.levels[level];
      const lx = Math.floor(x / lv.downsample);
      const ly = Math.floor(y / lv.downsample);
      const x0 = Math.max(0, lx);
      const y0 = Math.max(0, ly);
      const x1 = Math.min(lv.width, lx + w);
      const y1 = Math.min(lv.height, ly + h);
      if (x1 <= x0 || y1 <= y0) return createImage(w, h);
      if (x0 === lx && y0 === ly && x1 - x0 === w && y1 - y0 === h) {
        return reader.readLevelRect(level, lx, ly, w, h);
      }
      const inner = await reader.readLevelRect(level, x0, y0, x1 - x0, y1 - y0);
      const out = createImage(w, h);
      blit(out, inner, x0 - lx, y0 - ly);
      return out;
    },
    async readAssociatedImage(name) {
      if (!reader.associatedImages.includes(name)) {
        const known = reader.associatedImages.length ? reader.associatedImages.join(', ') : 'none';
        throw new InputError(`${where}: no associated image "${name}" (has: ${known})`);
      }
      return reader.readAssociatedImage(name);
    },
    close: () => reader.close(),
  };
}

/** Picks the level to read for a wanted downsample: the most reduced one not coarser than wanted. */
export function bestLevelForDownsample(levels: readonly SlideLevel[], downsample: number): number {
  let best = 0;
  for (let i = 0; i < levels.length; i++) {
    // 1% tolerance: pyramid downsamples are often 3.9999 or 4.0001 for a nominal 4.
    if (levels[i].downsample <= downsample * 1.01 && levels[i].downsample > levels[best].downsample) best = i;
  }
  return best;
}
