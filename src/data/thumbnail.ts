import sharp from 'sharp';
import { blit, createImage, type RgbImage } from '../core/index.ts';
import type { SlideSource } from './slide.ts';

/** Pixels per read when a thumbnail has to be made from a large level: bounds memory. */
const CHUNK_PIXELS = 16 * 1024 * 1024;

/**
 * A low-resolution view of the whole slide with its long side at most `maxSide`, read from the most
 * reduced level that is still large enough and shrunk by an integer factor in horizontal bands, so
 * memory stays bounded even for a single-level 100,000-pixel image. `downsample` is level-0 pixels
 * per thumbnail pixel.
 */
export async function readThumbnail(slide: SlideSource, maxSide = 2048): Promise<{ image: RgbImage; downsample: number }> {
  const l0 = slide.levels[0];
  const wanted = Math.max(l0.width, l0.height) / maxSide;
  let level = 0;
  for (let i = 0; i < slide.levels.length; i++) {
    if (slide.levels[i].downsample <= Math.max(1, wanted) * 1.01) level = i;
  }
  const lv = slide.levels[level];
  const factor = Math.max(1, Math.ceil(Math.max(lv.width, lv.height) / maxSide));
  const outW = Math.ceil(lv.width / factor);
  const outH = Math.ceil(lv.height / factor);
  const out = createImage(outW, outH);
  const bandRows = Math.max(1, Math.floor(CHUNK_PIXELS / (outW * factor * factor)));
  for (let oy = 0; oy < outH; oy += bandRows) {
    const rows = Math.min(bandRows, outH - oy);
    const region = await slide.readRegion(level, 0, Math.round(oy * factor * lv.downsample), outW * factor, rows * factor);
    if (factor === 1) {
      blit(out, region, 0, oy);
      continue;
    }
    const small = await sharp(region.data, { raw: { width: region.width, height: region.height, channels: 3 } })
      .resize(outW, rows, { kernel: 'linear', fit: 'fill' })
      .raw()
      .toBuffer();
    blit(out, { width: outW, height: rows, data: small }, 0, oy);
  }
  return { image: out, downsample: lv.downsample * factor };
}
