import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../../src/core/index.ts';
import { imageReader, writeSvs, writeTiff } from '../../src/data/index.ts';
import { smoothImage } from '../helpers.ts';

/** Tissue discs on white glass, smooth inside so JPEG keeps them close. */
export function discImage(width: number, height: number, discs: { cx: number; cy: number; r: number }[]): RgbImage {
  const img = smoothImage(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = discs.some((d) => (x - d.cx) ** 2 + (y - d.cy) ** 2 <= d.r * d.r);
      if (!inside) img.data.fill(245, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return img;
}

export async function writeSharpPyramid(
  path: string,
  img: RgbImage,
  options: { bigtiff?: boolean; compression?: 'jpeg' | 'lzw' | 'deflate'; mpp?: number; tile?: boolean } = {},
): Promise<void> {
  const mpp = options.mpp ?? 0.5;
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .tiff({
      tile: options.tile ?? true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: options.tile ?? true,
      compression: options.compression ?? 'jpeg',
      quality: 92,
      bigtiff: options.bigtiff ?? false,
      // sharp takes resolution in pixels per millimetre.
      xres: 1000 / mpp,
      yres: 1000 / mpp,
      resolutionUnit: 'cm',
    })
    .toFile(path);
}

export async function writePng(path: string, img: RgbImage): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toFile(path);
}

export async function writeJpegFile(path: string, img: RgbImage): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(path);
}

export async function writeTestSvs(
  path: string,
  img: RgbImage,
  photometric: 'ycbcr' | 'rgb' = 'ycbcr',
  extra: { levelCompressionCode?: number; bigTiff?: boolean } = {},
): Promise<void> {
  await writeSvs(path, img, {
    photometric,
    quality: 95,
    mpp: 0.2527,
    objectivePower: 40,
    downsamples: [4, 16],
    label: smoothImage(60, 50, 7),
    macro: smoothImage(150, 50, 3),
    ...extra,
  });
}

/** A one-level tiled TIFF written by our own writer (for header patching in the bad-input corpus). */
export async function writeSmallTiledTiff(path: string, img: RgbImage): Promise<void> {
  await writeTiff(path, [{ width: img.width, height: img.height, tileSize: 64, compression: 'jpeg', read: imageReader(img) }]);
}

/** Classic little-endian TIFF: the file offset of a tag's value field in the first IFD. */
export function tagValueOffset(buf: Buffer, tag: number, ifdIndex = 0): number {
  let ifd = buf.readUInt32LE(4);
  for (let i = 0; i < ifdIndex; i++) {
    const n = buf.readUInt16LE(ifd);
    ifd = buf.readUInt32LE(ifd + 2 + n * 12);
  }
  const n = buf.readUInt16LE(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (buf.readUInt16LE(e) === tag) return e + 8;
  }
  throw new Error(`tag ${tag} not found`);
}

export function writeBytes(dir: string, name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
