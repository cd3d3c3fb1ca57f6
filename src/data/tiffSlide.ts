import { open, type FileHandle } from 'node:fs/promises';
import { fromFile, type GeoTIFF, type GeoTIFFImage } from 'geotiff';
import sharp from 'sharp';
import { blit, createImage, InvalidSlideError, UnsupportedSlideError, type RgbImage } from '../core/index.ts';
import { aperioAssociatedName, isAperioDescription, parseAperioDescription, positiveNumber } from './aperio.ts';
import { spliceJpegTables } from './jpegTables.ts';
import type { SlideLevel, SlideReader, SlideVendor } from './slide.ts';
import { DEFAULT_TILE_CACHE_BYTES, TileCache } from './tileCache.ts';
import { decodeToRgb } from './decode.ts';

/** No scanner writes a side longer than this; a larger declared size is a corrupt or hostile header. */
export const MAX_SLIDE_SIDE = 1 << 21;
const MAX_IFDS = 256;

const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  5: 'LZW',
  6: 'old-style JPEG',
  7: 'JPEG',
  8: 'Deflate',
  32946: 'Deflate',
  32773: 'PackBits',
  33003: 'JPEG 2000 (Aperio YCbCr)',
  33005: 'JPEG 2000 (Aperio RGB)',
  34712: 'JPEG 2000',
  34713: 'JPEG 2000',
  50000: 'Zstandard',
  34887: 'LERC',
  50001: 'WebP',
};
/** Decoded by sharp's libtiff: everything libvips reads that slides use. */
const SHARP_COMPRESSIONS = new Set([1, 5, 8, 32946, 32773, 50000, 50001]);

interface Ifd {
  index: number;
  width: number;
  height: number;
  tiled: boolean;
  tileWidth: number;
  tileHeight: number;
  compression: number;
  photometric: number;
  samples: number;
  bits: number;
  planar: number;
  description?: string;
  jpegTables?: Uint8Array;
  image: GeoTIFFImage;
}

interface TiffLevel extends SlideLevel {
  ifd: Ifd;
  /** JPEG tiles decoded by us with the shared tables; otherwise regions come from sharp's page reader. */
  fastJpeg: boolean;
  offsets?: number[];
  counts?: number[];
  tilesAcross: number;
}

export interface TiffSlideOptions {
  cacheBytes?: number;
}

async function tag(image: GeoTIFFImage, name: string): Promise<any> {
  const fd = image.fileDirectory as any;
  if (!fd.hasTag(name)) return undefined;
  return fd.loadValue(name);
}

function rational(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'length' in v) {
    const a = v as ArrayLike<number>;
    if (a.length >= 2 && a[1] !== 0) return a[0] / a[1];
    if (a.length === 1) return a[0];
  }
  return undefined;
}

async function readIfds(path: string, tiff: GeoTIFF, fileSize: number): Promise<Ifd[]> {
  const ifds: Ifd[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < MAX_IFDS; i++) {
    let image: GeoTIFFImage;
    try {
      image = await tiff.getImage(i);
    } catch (err) {
      if (i > 0 && /no image at index|index out of|out of range/i.test(String((err as Error).message))) break;
      throw new InvalidSlideError(path, `corrupt TIFF directory ${i}: ${(err as Error).message}`, { cause: err });
    }
    const next = Number((image.fileDirectory as any).nextIFDByteOffset ?? 0);
    const width = Number(await tag(image, 'ImageWidth'));
    const height = Number(await tag(image, 'ImageLength'));
    if (!Number.isFinite(width) || !Number.isFinite(height) || width <= 0 || height <= 0) {
      throw new InvalidSlideError(path, `directory ${i} declares an image of ${width}x${height} pixels`);
    }
    if (width > MAX_SLIDE_SIDE || height > MAX_SLIDE_SIDE) {
      throw new InvalidSlideError(
        path,
        `directory ${i} declares ${width}x${height} pixels, beyond the ${MAX_SLIDE_SIDE} pixel limit per side`,
      );
    }
    const tileWidth = Number((await tag(image, 'TileWidth')) ?? 0);
    const tileHeight = Number((await tag(image, 'TileLength')) ?? 0);
    const tiled = (image.fileDirectory as any).hasTag('TileWidth') || (image.fileDirectory as any).hasTag('TileOffsets');
    if (tiled && (tileWidth <= 0 || tileHeight <= 0 || tileWidth > 16384 || tileHeight > 16384)) {
      throw new InvalidSlideError(path, `directory ${i} declares tiles of ${tileWidth}x${tileHeight} pixels`);
    }
    const bitsRaw = await tag(image, 'BitsPerSample');
    const jt = await tag(image, 'JPEGTables');
    const desc = await tag(image, 'ImageDescription');
    ifds.push({
      index: i,
      width,
      height,
      tiled,
      tileWidth,
      tileHeight,
      compression: Number((await tag(image, 'Compression')) ?? 1),
      photometric: Number((await tag(image, 'PhotometricInterpretation')) ?? 2),
      samples: Number((await tag(image, 'SamplesPerPixel')) ?? 1),
      bits: Number(bitsRaw === undefined ? 1 : typeof bitsRaw === 'number' ? bitsRaw : bitsRaw[0]),
      planar: Number((await tag(image, 'PlanarConfiguration')) ?? 1),
      description: typeof desc === 'string' ? desc.replace(/\0+$/, '') : undefined,
      jpegTables: jt ? Uint8Array.from(jt as ArrayLike<number>) : undefined,
      image,
    });
    if (next === 0) break;
    if (seen.has(next) || next >= fileSize) {
      throw new InvalidSlideError(
        path,
        seen.has(next) ? 'TIFF directory chain loops back on itself' : `directory ${i} points past the end of the file`,
      );
    }
    seen.add(next);
  }
  return ifds;
}

function checkCompression(path: string, ifd: Ifd): void {
  const c = ifd.compression;
  if (c === 7 || SHARP_COMPRESSIONS.has(c)) return;
  const name = COMPRESSION_NAMES[c] ?? `code ${c}`;
  const hint = name.startsWith('JPEG 2000')
    ? ': re-encode the slide with JPEG tiles first (e.g. `vips tiffsave in.svs out.tiff --tile --pyramid --compression jpeg`)'
    : '';
  throw new UnsupportedSlideError(path, `unsupported compression ${name} in directory ${ifd.index}${hint}`);
}

async function loadTileIndex(path: string, level: TiffLevel, fileSize: number): Promise<void> {
  const { ifd } = level;
  const tilesDown = Math.ceil(ifd.height / ifd.tileHeight);
  const expected = level.tilesAcross * tilesDown;
  if (expected * 4 > fileSize) {
    throw new InvalidSlideError(
      path,
      `directory ${ifd.index} needs ${expected} tiles but the file is only ${fileSize} bytes (truncated or corrupt)`,
    );
  }
  let offsets: ArrayLike<number | bigint>;
  let counts: ArrayLike<number | bigint>;
  try {
    offsets = await tag(ifd.image, 'TileOffsets');
    counts = await tag(ifd.image, 'TileByteCounts');
  } catch (err) {
    throw new InvalidSlideError(path, `cannot read the tile index of directory ${ifd.index}: ${(err as Error).message}`, { cause: err });
  }
  if (!offsets || !counts || offsets.length < expected || counts.length < expected) {
    throw new InvalidSlideError(path, `directory ${ifd.index} lists ${offsets?.length ?? 0} tiles, expected ${expected}`);
  }
  const o: number[] = new Array(expected);
  const n: number[] = new Array(expected);
  for (let i = 0; i < expected; i++) {
    o[i] = Number(offsets[i]);
    n[i] = Number(counts[i]);
    if (n[i] > 0 && (o[i] < 0 || o[i] + n[i] > fileSize)) {
      throw new InvalidSlideError(
        path,
        `tile ${i} of directory ${ifd.index} lies past the end of the file (offset ${o[i]} + ${n[i]} bytes > ${fileSize}); the file is truncated or corrupt`,
      );
    }
  }
  level.offsets = o;
  level.counts = n;
}

export async function openTiffSlide(path: string, fileSize: number, options: TiffSlideOptions = {}): Promise<SlideReader> {
  let tiff: GeoTIFF;
  try {
    tiff = await fromFile(path);
  } catch (err) {
    throw new InvalidSlideError(path, `not a readable TIFF: ${(err as Error).message}`, { cause: err });
  }
  let ifds: Ifd[];
  try {
    ifds = await readIfds(path, tiff, fileSize);
  } catch (err) {
    if (err instanceof InvalidSlideError) throw err;
    throw new InvalidSlideError(path, `corrupt TIFF structure: ${(err as Error).message}`, { cause: err });
  }
  if (ifds.length === 0) throw new InvalidSlideError(path, 'TIFF has no image directories');

  const aperio = isAperioDescription(ifds[0].description);
  const vendor: SlideVendor = aperio ? 'aperio' : 'generic-tiff';
  const tiledIfds = ifds.filter((d) => d.tiled);
  // A TIFF without tiles is a flat image: one level, read through libtiff.
  const levelIfds = (tiledIfds.length ? tiledIfds : [ifds[0]]).slice().sort((a, b) => b.width - a.width);
  const unique = levelIfds.filter((d, i) => i === 0 || d.width < levelIfds[i - 1].width);
  for (const d of unique) checkCompression(path, d);

  const associated = new Map<string, Ifd>();
  if (aperio) {
    for (const d of ifds) {
      if (d.tiled) continue;
      const name = d.index === 1 ? 'thumbnail' : aperioAssociatedName(d.description);
      if (name && !associated.has(name)) associated.set(name, d);
    }
  }

  const w0 = unique[0].width;
  const h0 = unique[0].height;
  const levels: TiffLevel[] = unique.map((ifd) => ({
    width: ifd.width,
    height: ifd.height,
    downsample: (w0 / ifd.width + h0 / ifd.height) / 2,
    ifd,
    fastJpeg: ifd.tiled && ifd.compression === 7 && ifd.bits === 8 && ifd.samples === 3 && ifd.planar === 1,
    tilesAcross: ifd.tiled ? Math.ceil(ifd.width / ifd.tileWidth) : 0,
  }));

  const fh: FileHandle = await open(path, 'r');
  try {
    for (const level of levels) if (level.fastJpeg) await loadTileIndex(path, level, fileSize);
  } catch (err) {
    await fh.close();
    throw err;
  }

  let mpp: number | undefined;
  let objectivePower: number | undefined;
  if (aperio) {
    const props = parseAperioDescription(ifds[0].description!);
    mpp = positiveNumber(props.MPP);
    objectivePower = positiveNumber(props.AppMag);
  } else {
    const image = unique[0].image;
    const xres = rational(await tag(image, 'XResolution'));
    const yres = rational(await tag(image, 'YResolution'));
    const unit = Number((await tag(image, 'ResolutionUnit')) ?? 2);
    const perUnit = unit === 3 ? 10_000 : unit === 2 ? 25_400 : undefined;
    if (perUnit && xres && xres > 0) {
      const m = (perUnit / xres + perUnit / (yres && yres > 0 ? yres : xres)) / 2;
      // libvips and others write placeholder resolutions (72 dpi, 1 px/mm): not a microscope's.
      if (m >= 0.05 && m <= 20) mpp = m;
    }
  }

  const cache = new TileCache(options.cacheBytes ?? DEFAULT_TILE_CACHE_BYTES);

  async function readTileBytes(offset: number, count: number): Promise<Uint8Array> {
    const buf = new Uint8Array(count);
    const { bytesRead } = await fh.read(buf, 0, count, offset);
    if (bytesRead !== count) throw new InvalidSlideError(path, `short read at byte ${offset}: the file is truncated`);
    return buf;
  }

  async function decodeJpegTile(level: TiffLevel, li: number, tileIndex: number): Promise<Uint8Array> {
    const { ifd } = level;
    const tileBytes = ifd.tileWidth * ifd.tileHeight * 3;
    const count = level.counts![tileIndex];
    if (count === 0) return new Uint8Array(tileBytes).fill(255);
    const raw = await readTileBytes(level.offsets![tileIndex], count);
    let decoded: { data: Buffer; info: sharp.OutputInfo };
    try {
      const stream = spliceJpegTables(ifd.jpegTables, raw, ifd.photometric === 2);
      decoded = await sharp(stream).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new InvalidSlideError(path, `cannot decode JPEG tile ${tileIndex} of level ${li}: ${(err as Error).message}`, { cause: err });
    }
    if (decoded.info.width !== ifd.tileWidth || decoded.info.height !== ifd.tileHeight || decoded.info.channels !== 3) {
      throw new InvalidSlideError(
        path,
        `tile ${tileIndex} of level ${li} decodes to ${decoded.info.width}x${decoded.info.height}x${decoded.info.channels}, expected ${ifd.tileWidth}x${ifd.tileHeight}x3`,
      );
    }
    return new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  }

  async function readFastJpeg(li: number, x: number, y: number, w: number, h: number): Promise<RgbImage> {
    const level = levels[li];
    const { tileWidth: tw, tileHeight: th } = level.ifd;
    const out = createImage(w, h, 0);
    const tx0 = Math.floor(x / tw);
    const ty0 = Math.floor(y / th);
    const tx1 = Math.floor((x + w - 1) / tw);
    const ty1 = Math.floor((y + h - 1) / th);
    const jobs: Promise<void>[] = [];
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        const index = ty * level.tilesAcross + tx;
        jobs.push(
          cache
            .get(`${li}:${index}`, () => decodeJpegTile(level, li, index))
            .then((data) => {
              blit(out, { width: tw, height: th, data }, tx * tw - x, ty * th - y);
            }),
        );
      }
    }
    await Promise.all(jobs);
    return out;
  }

  async function readWithSharp(ifd: Ifd, region?: { left: number; top: number; width: number; height: number }): Promise<RgbImage> {
    try {
      let pipeline = sharp(path, { page: ifd.index, limitInputPixels: false });
      if (region) pipeline = pipeline.extract(region);
      return await decodeToRgb(pipeline);
    } catch (err) {
      throw new InvalidSlideError(path, `cannot decode directory ${ifd.index}: ${(err as Error).message}`, { cause: err });
    }
  }

  return {
    levels: levels.map(({ width, height, downsample }) => ({ width, height, downsample })),
    mpp,
    objectivePower,
    vendor,
    associatedImages: [...associated.keys()],
    readLevelRect(li, x, y, w, h) {
      const level = levels[li];
      if (level.fastJpeg) return readFastJpeg(li, x, y, w, h);
      return readWithSharp(level.ifd, { left: x, top: y, width: w, height: h });
    },
    readAssociatedImage(name) {
      return readWithSharp(associated.get(name)!);
    },
    async close() {
      cache.clear();
      await fh.close();
      (tiff as any).close?.();
    },
  };
}
