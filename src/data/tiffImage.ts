import { InvalidSlideError, UnsupportedSlideError } from '../core/index.ts';
import { bytes, TAG, tagName, text, value, values, type TiffDirectory, type TiffFile } from './tiffDirectory.ts';

/** No scanner writes a side longer than this; a larger declared size is a corrupt or hostile header. */
export const MAX_SLIDE_SIDE = 1 << 21;
/** The most pixels one tile or strip may hold: decoding one stays within tens of megabytes. */
export const MAX_BLOCK_PIXELS = 1 << 26;
const MAX_TILE_SIDE = 1 << 14;

export const COMPRESSION_NAMES: Record<number, string> = {
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
/** Each decoded here and tested on a real file: JPEG and WebP through libvips, the rest through geotiff's codecs. */
export const SUPPORTED_COMPRESSIONS = new Set([1, 5, 7, 8, 32946, 32773, 50000, 50001]);

/** One image of a TIFF (a pyramid level or an associated image), its block grid checked against its tags. */
export interface TiffImage {
  dir: TiffDirectory;
  index: number;
  width: number;
  height: number;
  tiled: boolean;
  /** Tile size, or (image width, rows per strip) for strips. */
  blockWidth: number;
  blockHeight: number;
  blocksAcross: number;
  blocksDown: number;
  compression: number;
  /** 0 white is zero, 1 black is zero (grey), 2 RGB, 6 YCbCr (JPEG only). */
  photometric: number;
  samples: number;
  /** The 4th sample is alpha (RGBA). */
  alpha: boolean;
  predictor: number;
  description?: string;
  jpegTables?: Uint8Array;
  offsets: number[];
  counts: number[];
}

function refuse(file: TiffFile, dir: TiffDirectory, field: string, why: string): never {
  throw new UnsupportedSlideError(
    file.path,
    `directory ${dir.index}: ${field} ${why}: gradelab reads 8-bit brightfield RGB (or grey) slides`,
  );
}

/** The description, width and height of a directory: enough to pick levels before checking the rest. */
export async function peekImage(
  file: TiffFile,
  dir: TiffDirectory,
): Promise<{ width: number; height: number; tiled: boolean; samples: number; description?: string }> {
  const width = await value(file, dir, TAG.ImageWidth, 1);
  const height = await value(file, dir, TAG.ImageLength, 1);
  if (!width || !height || !Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidSlideError(file.path, `directory ${dir.index} declares an image of ${width}x${height} pixels`);
  }
  if (width > MAX_SLIDE_SIDE || height > MAX_SLIDE_SIDE) {
    throw new InvalidSlideError(
      file.path,
      `directory ${dir.index} declares ${width}x${height} pixels, beyond the ${MAX_SLIDE_SIDE} pixel limit per side`,
    );
  }
  const tiled = dir.entries.has(TAG.TileWidth) || dir.entries.has(TAG.TileOffsets);
  const samples = (await value(file, dir, TAG.SamplesPerPixel, 1)) ?? 1;
  return { width, height, tiled, samples, description: await text(file, dir, TAG.ImageDescription) };
}

/**
 * Reads and checks everything a reader needs from a directory before any pixel: the block grid and the
 * size of its offset and byte-count arrays (checked before they are read), 8 bits per sample, a
 * brightfield photometric, contiguous samples, a compression gradelab decodes, and block extents inside
 * the file. Anything else is refused here with one line naming the directory and the field.
 */
export async function describeImage(file: TiffFile, dir: TiffDirectory): Promise<TiffImage> {
  const { width, height, tiled, samples, description } = await peekImage(file, dir);
  const compression = (await value(file, dir, TAG.Compression, 1)) ?? 1;
  if (!SUPPORTED_COMPRESSIONS.has(compression)) {
    const name = COMPRESSION_NAMES[compression] ?? `code ${compression}`;
    const hint = name.startsWith('JPEG 2000')
      ? ': re-encode the slide with JPEG tiles first (e.g. `vips tiffsave in.svs out.tiff --tile --pyramid --compression jpeg`)'
      : '';
    throw new UnsupportedSlideError(file.path, `unsupported compression ${name} in directory ${dir.index}${hint}`);
  }
  const bits = (await values(file, dir, TAG.BitsPerSample, { max: 16 })) ?? [1];
  if (bits.some((b) => b !== 8)) refuse(file, dir, 'BitsPerSample', `is ${bits.join(',')}`);
  const format = (await values(file, dir, TAG.SampleFormat, { max: 16 })) ?? [1];
  if (format.some((f) => f !== 1)) refuse(file, dir, 'SampleFormat', `is ${format.join(',')} (not unsigned integers)`);
  const photometric = (await value(file, dir, TAG.Photometric, 1)) ?? (samples >= 3 ? 2 : 1);
  const extra = (await values(file, dir, TAG.ExtraSamples, { max: 16 })) ?? [];
  const alpha = samples === 4 && extra.length === 1 && photometric === 2;
  const brightfield =
    (samples === 1 && (photometric === 0 || photometric === 1)) ||
    (samples === 3 && (photometric === 2 || (photometric === 6 && compression === 7))) ||
    alpha;
  if (!brightfield) {
    const kind = samples === 4 && photometric === 5 ? ' (CMYK)' : photometric === 3 ? ' (palette)' : samples > 4 ? ' (multi-channel)' : '';
    refuse(file, dir, 'SamplesPerPixel/PhotometricInterpretation', `are ${samples}/${photometric}${kind}`);
  }
  const planar = (await value(file, dir, TAG.PlanarConfiguration, 1)) ?? 1;
  if (planar !== 1 && samples > 1) refuse(file, dir, 'PlanarConfiguration', `is ${planar} (separate planes)`);
  const predictor = (await value(file, dir, TAG.Predictor, 1)) ?? 1;
  if (predictor !== 1 && predictor !== 2) refuse(file, dir, 'Predictor', `is ${predictor}`);

  let blockWidth: number;
  let blockHeight: number;
  if (tiled) {
    blockWidth = (await value(file, dir, TAG.TileWidth, 1)) ?? 0;
    blockHeight = (await value(file, dir, TAG.TileLength, 1)) ?? 0;
    if (!(blockWidth > 0 && blockHeight > 0 && blockWidth <= MAX_TILE_SIDE && blockHeight <= MAX_TILE_SIDE)) {
      throw new InvalidSlideError(file.path, `directory ${dir.index} declares tiles of ${blockWidth}x${blockHeight} pixels`);
    }
  } else {
    blockWidth = width;
    blockHeight = Math.min(height, (await value(file, dir, TAG.RowsPerStrip, 1)) ?? height);
    if (!(blockHeight > 0)) throw new InvalidSlideError(file.path, `directory ${dir.index} declares ${blockHeight} rows per strip`);
  }
  if (blockWidth * blockHeight > MAX_BLOCK_PIXELS) {
    throw new InvalidSlideError(
      file.path,
      `directory ${dir.index} declares ${tiled ? 'tiles' : 'strips'} of ${blockWidth}x${blockHeight} pixels, over the ${MAX_BLOCK_PIXELS} pixel limit`,
    );
  }
  const blocksAcross = Math.ceil(width / blockWidth);
  const blocksDown = Math.ceil(height / blockHeight);
  const expected = blocksAcross * blocksDown;
  const [offsetTag, countTag] = tiled ? [TAG.TileOffsets, TAG.TileByteCounts] : [TAG.StripOffsets, TAG.StripByteCounts];
  for (const t of [offsetTag, countTag]) {
    const n = dir.entries.get(t)?.count ?? 0;
    if (n !== expected) {
      throw new InvalidSlideError(
        file.path,
        `directory ${dir.index}: ${tagName(t)} lists ${n} ${tiled ? 'tiles' : 'strips'}, but ${width}x${height} pixels in ${blockWidth}x${blockHeight} blocks make ${expected}`,
      );
    }
  }
  const offsets = (await values(file, dir, offsetTag, { expect: expected }))!;
  const counts = (await values(file, dir, countTag, { expect: expected }))!;
  const blockBytes = (row: number) => blockWidth * (tiled ? blockHeight : Math.min(blockHeight, height - row * blockHeight)) * samples;
  for (let i = 0; i < expected; i++) {
    if (counts[i] > 0 && (offsets[i] < 0 || offsets[i] + counts[i] > file.size)) {
      throw new InvalidSlideError(
        file.path,
        `directory ${dir.index}: ${tiled ? 'tile' : 'strip'} ${i} lies past the end of the file (bytes ${offsets[i]}..${offsets[i] + counts[i]} of ${file.size}); the file is truncated or corrupt`,
      );
    }
    // Uncompressed blocks have one size: another means the compression tag is wrong.
    if (compression === 1 && counts[i] > 0 && counts[i] !== blockBytes(Math.floor(i / blocksAcross))) {
      throw new InvalidSlideError(
        file.path,
        `directory ${dir.index}: uncompressed ${tiled ? 'tile' : 'strip'} ${i} holds ${counts[i]} bytes, not the ${blockBytes(Math.floor(i / blocksAcross))} its size needs`,
      );
    }
  }
  const jpegTables = compression === 7 ? await bytes(file, dir, TAG.JPEGTables, 1 << 16) : undefined;
  return {
    dir,
    index: dir.index,
    width,
    height,
    tiled,
    blockWidth,
    blockHeight,
    blocksAcross,
    blocksDown,
    compression,
    photometric,
    samples,
    alpha,
    predictor,
    description,
    jpegTables: jpegTables && Uint8Array.from(jpegTables),
    offsets,
    counts,
  };
}

/**
 * Multi-channel and multi-plane files (fluorescence QPTIFF, OME-TIFF with channels, z or time): refused,
 * since reading their first plane as a grey slide would be wrong without a word.
 */
export function refuseMultiPlane(
  file: TiffFile,
  images: { index: number; width: number; height: number; samples: number; description?: string }[],
): void {
  const ome = images[0]?.description?.includes('<OME') ? images[0].description : undefined;
  if (ome) {
    const pixels = /<Pixels\b[^>]*>/.exec(ome)?.[0] ?? '';
    const size = (k: string) => Number(new RegExp(`\\b${k}="(\\d+)"`).exec(pixels)?.[1] ?? 1);
    const [c, z, t] = [size('SizeC'), size('SizeZ'), size('SizeT')];
    const rgb = c === 3 && images[0].samples === 3;
    if ((c > 1 && !rgb) || z > 1 || t > 1) {
      throw new UnsupportedSlideError(
        file.path,
        `OME-TIFF with ${c} channel${c === 1 ? '' : 's'}, ${z} z-plane${z === 1 ? '' : 's'} and ${t} time point${t === 1 ? '' : 's'}: gradelab reads brightfield RGB slides`,
      );
    }
  }
  const widest = Math.max(...images.map((d) => d.width));
  const planes = images.filter((d) => d.width === widest && d.height === images.find((x) => x.width === widest)!.height && d.samples === 1);
  if (planes.length > 1) {
    throw new UnsupportedSlideError(
      file.path,
      `${planes.length} single-channel planes of ${widest} pixels wide (fluorescence channels or focal planes): gradelab reads brightfield RGB slides`,
    );
  }
}
