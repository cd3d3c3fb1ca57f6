import sharp from 'sharp';
import { InputError } from '../core/index.ts';
import { bestLevelForDownsample, type SlideSource } from '../data/index.ts';

/** Deep Zoom tile side and format: what OpenSeadragon reads, made on request from the slide reader. */
export const DZI_TILE = 256;
export type TileFormat = 'jpeg' | 'png';

/** Deep Zoom levels: level L is the slide scaled by 2^(L - max), max = ceil(log2(longest side)). */
export function dziLevels(width: number, height: number): { max: number; size(level: number): { width: number; height: number } } {
  const max = Math.ceil(Math.log2(Math.max(width, height)));
  return {
    max,
    size: (level) => {
      const scale = 2 ** (max - level);
      return { width: Math.max(1, Math.ceil(width / scale)), height: Math.max(1, Math.ceil(height / scale)) };
    },
  };
}

/** The Deep Zoom description OpenSeadragon takes inline (no XML request: works from file:// too). */
export function dziSource(url: string, width: number, height: number, format: TileFormat) {
  return {
    Image: {
      xmlns: 'http://schemas.microsoft.com/deepzoom/2008',
      Url: url,
      Format: format,
      Overlap: '0',
      TileSize: String(DZI_TILE),
      Size: { Width: String(width), Height: String(height) },
    },
  };
}

/**
 * One Deep Zoom tile, read from the slide's best pyramid level for its scale and resampled (Lanczos),
 * as JPEG or PNG. Levels and tiles outside the pyramid are the caller's 4xx: an InputError here.
 */
export async function dziTile(slide: SlideSource, level: number, col: number, row: number, format: TileFormat): Promise<Buffer> {
  const { width, height } = slide.levels[0];
  const dz = dziLevels(width, height);
  if (!Number.isInteger(level) || level < 0 || level > dz.max) throw new InputError(`level ${level} is outside 0..${dz.max}`);
  const size = dz.size(level);
  const across = Math.ceil(size.width / DZI_TILE);
  const down = Math.ceil(size.height / DZI_TILE);
  if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= across || row >= down) {
    throw new InputError(`tile ${col}_${row} is outside level ${level} (${across} x ${down} tiles)`);
  }
  const scale = 2 ** (dz.max - level);
  const tw = Math.min(DZI_TILE, size.width - col * DZI_TILE);
  const th = Math.min(DZI_TILE, size.height - row * DZI_TILE);
  const sl = bestLevelForDownsample(slide.levels, scale);
  const ds = slide.levels[sl].downsample;
  const x0 = col * DZI_TILE * scale;
  const y0 = row * DZI_TILE * scale;
  const rw = Math.max(1, Math.round((tw * scale) / ds));
  const rh = Math.max(1, Math.round((th * scale) / ds));
  const region = await slide.readRegion(sl, x0, y0, rw, rh);
  let img = sharp(region.data, { raw: { width: region.width, height: region.height, channels: 3 } });
  if (rw !== tw || rh !== th) img = img.resize(tw, th, { kernel: 'lanczos3', fit: 'fill' });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 85 }).toBuffer();
}
