import type sharp from 'sharp';
import type { RgbImage } from '../core/index.ts';

/** Runs a sharp pipeline to 8-bit RGB: alpha dropped, grey expanded, 16-bit scaled down. */
export async function decodeToRgb(pipeline: sharp.Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
