import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { InvalidSlideError } from '../core/index.ts';
import { spliceJpegTables } from './jpegTables.ts';
import { readBlock, type TiffFile } from './tiffDirectory.ts';
import { COMPRESSION_NAMES, type TiffImage } from './tiffImage.ts';

/**
 * geotiff's codec registry, loaded on the first block that needs it. Its package entry also loads
 * geotiff's worker pool, whose web-worker dependency takes over any worker thread it is imported in (it
 * reads its own workerData and crashes in piscina's workers, where the synthetic-slide renderer and the
 * tile loader run): the codecs alone are imported, by file, from the module build that entry names.
 */
let codecs: Promise<{ getDecoder: typeof import('geotiff').getDecoder }> | undefined;
function geotiffCodecs() {
  codecs ??= import(new URL('./compression/index.js', import.meta.resolve('geotiff')).href);
  return codecs;
}

/** The first line of a decoder's message, without libvips' repeated prefixes: one line per error. */
export function oneLine(err: unknown): string {
  const first = (err instanceof Error ? err.message : String(err)).split('\n').find((l) => l.trim()) ?? 'unknown error';
  return first.replace(/^(Input buffer has corrupt header: )?(VipsJpeg|tiff2vips|VipsForeignLoad\w*|webp2vips): /i, '').trim();
}

/** Rows of block `index`: whole blocks, except a strip image's last strip. */
export function blockRows(img: TiffImage, index: number): number {
  if (img.tiled) return img.blockHeight;
  const row = Math.floor(index / img.blocksAcross);
  return Math.min(img.blockHeight, img.height - row * img.blockHeight);
}

/**
 * RGB from decoded samples: grey replicated (inverted where white is zero), RGBA over white glass (as
 * transparent areas of a slide are background).
 */
function toRgb(img: TiffImage, samples: Uint8Array, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return samples.length === pixels * 3 ? samples : samples.subarray(0, pixels * 3);
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    if (channels === 1) {
      const v = img.photometric === 0 ? 255 - samples[p] : samples[p];
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = v;
    } else {
      const a = samples[p * 4 + 3];
      for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round((samples[p * 4 + c] * a + 255 * (255 - a)) / 255);
    }
  }
  return out;
}

async function decodeWithSharp(bytes: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    channels: info.channels,
  };
}

/**
 * A Deflate block through Node's zlib (native: geotiff's pako and its generic predictor were a third of
 * tiling a slide with a label mask), then TIFF's horizontal predictor on 8-bit samples: each sample is
 * stored as the difference from the one a pixel to its left.
 */
function inflated(raw: Uint8Array, img: TiffImage, rows: number): Uint8Array {
  const out = inflateSync(raw);
  const data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  if (img.predictor === 2) {
    const step = img.samples;
    const rowBytes = img.blockWidth * step;
    for (let r = 0; r < rows; r++)
      for (let i = r * rowBytes + step, end = (r + 1) * rowBytes; i < end && i < data.length; i++) data[i] += data[i - step];
  }
  return data;
}

/**
 * One tile or strip as RGB (blockWidth x rows x 3). A block stored with zero bytes is background,
 * white, whatever the compression (OpenSlide treats missing tiles the same way). JPEG and WebP decode
 * through libvips; Deflate through Node's zlib; LZW, PackBits, Zstandard and uncompressed through
 * geotiff's codecs, with TIFF's horizontal predictor.
 */
export async function decodeBlock(file: TiffFile, img: TiffImage, index: number, of: string): Promise<Uint8Array> {
  const where = `${img.tiled ? 'tile' : 'strip'} ${index} of ${of} (directory ${img.index})`;
  const rows = blockRows(img, index);
  const pixels = img.blockWidth * rows;
  const count = img.counts[index];
  if (count === 0) return new Uint8Array(pixels * 3).fill(255);
  const raw = await readBlock(file, img.offsets[index], count, where);
  const name = COMPRESSION_NAMES[img.compression] ?? String(img.compression);
  try {
    if (img.compression === 7 || img.compression === 50001) {
      const stream = img.compression === 7 ? spliceJpegTables(img.jpegTables, raw, img.photometric === 2) : raw;
      const d = await decodeWithSharp(stream);
      // A JPEG strip may be coded to the full strip height; the image's last strip keeps its rows.
      if (d.width !== img.blockWidth || d.height < rows || ![1, 3, 4].includes(d.channels)) {
        throw new Error(`decodes to ${d.width}x${d.height}x${d.channels}, expected ${img.blockWidth}x${rows}`);
      }
      const rgb = toRgb({ ...img, photometric: d.channels === 1 ? 1 : img.photometric }, d.data, d.width * d.height, d.channels);
      return rgb.subarray(0, pixels * 3);
    }
    if (img.compression === 8 || img.compression === 32946) {
      const decoded = inflated(raw, img, rows);
      if (decoded.length < pixels * img.samples) throw new Error(`decodes to ${decoded.length} bytes, expected ${pixels * img.samples}`);
      return toRgb(img, decoded, pixels, img.samples);
    }
    const { getDecoder } = await geotiffCodecs();
    const decoder = await getDecoder(img.compression, {
      tileWidth: img.blockWidth,
      tileHeight: rows,
      predictor: img.predictor,
      bitsPerSample: Array(img.samples).fill(8),
      planarConfiguration: 1,
      samplesPerPixel: img.samples,
    });
    const decoded = new Uint8Array(await decoder.decode(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer));
    if (decoded.length < pixels * img.samples) throw new Error(`decodes to ${decoded.length} bytes, expected ${pixels * img.samples}`);
    return toRgb(img, decoded, pixels, img.samples);
  } catch (err) {
    throw new InvalidSlideError(file.path, `cannot decode ${name} ${where}: ${oneLine(err)}`, { cause: err });
  }
}
