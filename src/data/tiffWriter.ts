import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import sharp from 'sharp';
import { blit, createImage, guardedTempPath, nameFileOnError, type RgbImage } from '../core/index.ts';
import { splitJpegTables } from './jpegTables.ts';

/**
 * A TIFF/BigTIFF writer for what sharp cannot write: Aperio SVS structure (ImageDescription, stripped
 * thumbnail/label/macro pages), JPEG tiles sharing one JPEGTables, RGB or YCbCr photometric. Used by the
 * synthetic slide generator and to assemble test slides. Pixels are pulled tile by tile, so a slide of
 * any size is written in bounded memory.
 */
export interface TiffPageSpec {
  width: number;
  height: number;
  /** Tiled pages hold pyramid levels; stripped pages are associated images (one strip). */
  tileSize?: number;
  compression: 'jpeg' | 'none';
  /** JPEG component space. 'rgb' stores R, G, B planes (Aperio "JPEG/RGB"), 'ycbcr' the JFIF default. */
  photometric?: 'ycbcr' | 'rgb';
  quality?: number;
  description?: string;
  subfileType?: number;
  /** Writes XResolution/YResolution in pixels per centimetre, as OpenSlide reads a generic TIFF's mpp. */
  mpp?: number;
  /** Overrides the Compression tag's value (to build corpora of unsupported files). */
  compressionCode?: number;
  read(x: number, y: number, w: number, h: number): Promise<RgbImage> | RgbImage;
}

export interface WriteTiffOptions {
  bigTiff?: boolean;
}

const T_SHORT = 3;
const T_LONG = 4;
const T_RATIONAL = 5;
const T_ASCII = 2;
const T_UNDEFINED = 7;
const T_LONG8 = 16;

interface Entry {
  tag: number;
  type: number;
  values: number[] | Uint8Array;
}

function typeSize(type: number): number {
  return type === T_SHORT ? 2 : type === T_LONG ? 4 : type === T_RATIONAL ? 8 : type === T_LONG8 ? 8 : 1;
}

/**
 * Encodes RGB planes into a JPEG whose components are R, G and B rather than Y, Cb, Cr. libjpeg through
 * sharp always converts RGB to YCbCr when encoding, so the pixels are first mapped through the inverse
 * (JFIF) transform: the encoder's forward transform then stores the original R, G, B values. Colours
 * outside the YCbCr gamut clip; slide colours (pale pinks and purples) stay well inside it.
 */
function rgbPlanesAsYcbcrInput(img: RgbImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    const y = d[i];
    const cb = d[i + 1] - 128;
    const cr = d[i + 2] - 128;
    out[i] = Math.max(0, Math.min(255, Math.round(y + 1.402 * cr)));
    out[i + 1] = Math.max(0, Math.min(255, Math.round(y - 0.344136 * cb - 0.714136 * cr)));
    out[i + 2] = Math.max(0, Math.min(255, Math.round(y + 1.772 * cb)));
  }
  return out;
}

export async function encodeJpeg(img: RgbImage, quality: number, photometric: 'ycbcr' | 'rgb'): Promise<Uint8Array> {
  const pixels = photometric === 'rgb' ? rgbPlanesAsYcbcrInput(img) : img.data;
  const buf = await sharp(pixels, { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality, optimiseCoding: false, chromaSubsampling: photometric === 'rgb' ? '4:4:4' : '4:2:0' })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Pads a tile read at the right/bottom edge to the full tile size, as TIFF requires. */
async function readPadded(page: TiffPageSpec, x: number, y: number, w: number, h: number): Promise<RgbImage> {
  const vw = Math.min(w, page.width - x);
  const vh = Math.min(h, page.height - y);
  const img = await page.read(x, y, vw, vh);
  if (vw === w && vh === h) return img;
  const out = createImage(w, h);
  blit(out, img, 0, 0);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class BlockWriter {
  pos: number;
  constructor(
    private readonly fh: FileHandle,
    start: number,
  ) {
    this.pos = start;
  }
  async write(bytes: Uint8Array): Promise<number> {
    const at = this.pos;
    await this.fh.write(bytes, 0, bytes.length, at);
    this.pos += bytes.length;
    if (this.pos % 2) {
      await this.fh.write(new Uint8Array(1), 0, 1, this.pos);
      this.pos++;
    }
    return at;
  }
}

async function writePageData(w: BlockWriter, page: TiffPageSpec): Promise<Entry[]> {
  const photometric = page.photometric ?? 'ycbcr';
  const quality = page.quality ?? 90;
  const offsets: number[] = [];
  const counts: number[] = [];
  let tables: Uint8Array | undefined;
  const encode = async (img: RgbImage, shared: boolean): Promise<Uint8Array> => {
    if (page.compression === 'none') return img.data;
    const jpeg = await encodeJpeg(img, quality, photometric);
    if (!shared) return jpeg;
    const split = splitJpegTables(jpeg);
    if (!tables) tables = split.tables;
    else if (!equalBytes(tables, split.tables)) throw new Error('JPEG tiles came out with different tables; cannot share JPEGTables');
    return split.abbreviated;
  };
  if (page.tileSize) {
    const ts = page.tileSize;
    for (let y = 0; y < page.height; y += ts) {
      for (let x = 0; x < page.width; x += ts) {
        const bytes = await encode(await readPadded(page, x, y, ts, ts), true);
        offsets.push(await w.write(bytes));
        counts.push(bytes.length);
      }
    }
  } else {
    const bytes = await encode(await page.read(0, 0, page.width, page.height), false);
    offsets.push(await w.write(bytes));
    counts.push(bytes.length);
  }
  const jpeg = page.compression === 'jpeg';
  const entries: Entry[] = [
    { tag: 254, type: T_LONG, values: [page.subfileType ?? 0] },
    { tag: 256, type: T_LONG, values: [page.width] },
    { tag: 257, type: T_LONG, values: [page.height] },
    { tag: 258, type: T_SHORT, values: [8, 8, 8] },
    { tag: 259, type: T_SHORT, values: [page.compressionCode ?? (jpeg ? 7 : 1)] },
    { tag: 262, type: T_SHORT, values: [jpeg && photometric === 'ycbcr' ? 6 : 2] },
    { tag: 277, type: T_SHORT, values: [3] },
    { tag: 284, type: T_SHORT, values: [1] },
  ];
  if (page.description !== undefined) {
    entries.push({ tag: 270, type: T_ASCII, values: new TextEncoder().encode(`${page.description}\0`) });
  }
  if (page.mpp) {
    const perCm = Math.round((10_000 / page.mpp) * 1000);
    entries.push({ tag: 282, type: T_RATIONAL, values: [perCm, 1000] });
    entries.push({ tag: 283, type: T_RATIONAL, values: [perCm, 1000] });
    entries.push({ tag: 296, type: T_SHORT, values: [3] });
  }
  if (page.tileSize) {
    entries.push({ tag: 322, type: T_LONG, values: [page.tileSize] });
    entries.push({ tag: 323, type: T_LONG, values: [page.tileSize] });
    entries.push({ tag: 324, type: T_LONG8, values: offsets });
    entries.push({ tag: 325, type: T_LONG8, values: counts });
  } else {
    entries.push({ tag: 273, type: T_LONG8, values: offsets });
    entries.push({ tag: 278, type: T_LONG, values: [page.height] });
    entries.push({ tag: 279, type: T_LONG8, values: counts });
  }
  if (tables) entries.push({ tag: 347, type: T_UNDEFINED, values: tables });
  if (jpeg && photometric === 'ycbcr') entries.push({ tag: 530, type: T_SHORT, values: [2, 2] });
  return entries.sort((a, b) => a.tag - b.tag);
}

function encodeIfd(entries: Entry[], at: number, big: boolean): { bytes: Uint8Array; nextPointerAt: number } {
  const entrySize = big ? 20 : 12;
  const inline = big ? 8 : 4;
  const headSize = (big ? 8 : 2) + entries.length * entrySize + (big ? 8 : 4);
  const resolved = entries.map((e) => {
    // Classic TIFF has no LONG8: offsets and counts fall back to LONG (files under 4 GiB).
    const type = e.type === T_LONG8 && !big ? T_LONG : e.type;
    const count = e.values instanceof Uint8Array ? e.values.length : e.type === T_RATIONAL ? e.values.length / 2 : e.values.length;
    const size = e.values instanceof Uint8Array ? e.values.length : e.values.length * typeSize(type === T_RATIONAL ? T_LONG : type);
    return { ...e, type, count, size };
  });
  const extra = resolved.reduce((n, e) => n + (e.size > inline ? e.size + (e.size % 2) : 0), 0);
  const buf = Buffer.alloc(headSize + extra);
  let p = 0;
  if (big) {
    buf.writeBigUInt64LE(BigInt(entries.length), 0);
    p = 8;
  } else {
    buf.writeUInt16LE(entries.length, 0);
    p = 2;
  }
  let extraPos = headSize;
  const writeValues = (e: (typeof resolved)[number], target: number) => {
    if (e.values instanceof Uint8Array) {
      buf.set(e.values, target);
      return;
    }
    const step = e.type === T_SHORT ? 2 : e.type === T_LONG8 ? 8 : 4;
    e.values.forEach((v, i) => {
      const o = target + i * step;
      if (step === 2) buf.writeUInt16LE(v, o);
      else if (step === 8) buf.writeBigUInt64LE(BigInt(v), o);
      else buf.writeUInt32LE(v, o);
    });
  };
  for (const e of resolved) {
    buf.writeUInt16LE(e.tag, p);
    buf.writeUInt16LE(e.type, p + 2);
    if (big) buf.writeBigUInt64LE(BigInt(e.count), p + 4);
    else buf.writeUInt32LE(e.count, p + 4);
    const valueAt = p + (big ? 12 : 8);
    if (e.size <= inline) {
      writeValues(e, valueAt);
    } else {
      if (big) buf.writeBigUInt64LE(BigInt(at + extraPos), valueAt);
      else buf.writeUInt32LE(at + extraPos, valueAt);
      writeValues(e, extraPos);
      extraPos += e.size + (e.size % 2);
    }
    p += entrySize;
  }
  return { bytes: buf, nextPointerAt: at + p };
}

export async function writeTiff(path: string, pages: TiffPageSpec[], options: WriteTiffOptions = {}): Promise<void> {
  const big = options.bigTiff ?? false;
  const { tmp, release } = guardedTempPath(path);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'r+');
    const header = Buffer.alloc(big ? 16 : 8);
    header.write('II', 0, 'latin1');
    if (big) {
      header.writeUInt16LE(43, 2);
      header.writeUInt16LE(8, 4);
    } else {
      header.writeUInt16LE(42, 2);
    }
    const w = new BlockWriter(fh, header.length);
    const ifdEntries: Entry[][] = [];
    for (const page of pages) ifdEntries.push(await writePageData(w, page));
    if (!big && w.pos > 0xffff0000) throw new Error('classic TIFF cannot exceed 4 GiB: write with bigTiff');
    let pointerAt = big ? 8 : 4;
    for (const entries of ifdEntries) {
      const at = w.pos;
      const ptr = Buffer.alloc(big ? 8 : 4);
      if (big) ptr.writeBigUInt64LE(BigInt(at));
      else ptr.writeUInt32LE(at);
      if (pointerAt === (big ? 8 : 4)) ptr.copy(header, pointerAt);
      else await fh.write(ptr, 0, ptr.length, pointerAt);
      const { bytes, nextPointerAt } = encodeIfd(entries, at, big);
      await w.write(bytes);
      pointerAt = nextPointerAt;
    }
    await fh.write(header, 0, header.length, 0);
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    nameFileOnError(path)(err);
  } finally {
    release();
  }
}

/** Reads sub-rectangles of an in-memory image (padding outside with white). */
export function imageReader(img: RgbImage): (x: number, y: number, w: number, h: number) => RgbImage {
  return (x, y, w, h) => {
    const out = createImage(w, h);
    blit(out, img, -x, -y);
    return out;
  };
}

/** Downsamples an in-memory image by an integer factor with sharp (area average). */
export async function downsampleImage(img: RgbImage, factor: number): Promise<RgbImage> {
  const width = Math.max(1, Math.round(img.width / factor));
  const height = Math.max(1, Math.round(img.height / factor));
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}

export interface SvsOptions {
  mpp?: number;
  objectivePower?: number;
  tileSize?: number;
  quality?: number;
  photometric?: 'ycbcr' | 'rgb';
  /** Downsample factors of the pyramid levels after level 0. */
  downsamples?: number[];
  label?: RgbImage;
  macro?: RgbImage;
  bigTiff?: boolean;
  /** Overrides the level pages' Compression tag (corpora of unsupported files). */
  levelCompressionCode?: number;
}

/**
 * Writes an in-memory image as an Aperio SVS: level 0, a stripped thumbnail as the second directory,
 * the reduced levels, then label and macro, with Aperio's ImageDescription lines.
 */
export async function writeSvs(path: string, img: RgbImage, options: SvsOptions = {}): Promise<void> {
  const ts = options.tileSize ?? 256;
  const q = options.quality ?? 90;
  const photometric = options.photometric ?? 'ycbcr';
  const mpp = options.mpp ?? 0.5;
  const mag = options.objectivePower ?? Math.round(10 / mpp);
  const lib = 'Aperio Image Library v12.0.15';
  const desc = `${lib}\r\n${img.width}x${img.height} [0,0 ${img.width}x${img.height}] (${ts}x${ts}) JPEG/${photometric === 'rgb' ? 'RGB' : 'YCbCr'} Q=${q}|AppMag = ${mag}|StripeWidth = 2040|ScanScope ID = SYNTH|Filename = synthetic|MPP = ${mpp.toFixed(4)}`;
  const level = (im: RgbImage, description: string): TiffPageSpec => ({
    width: im.width,
    height: im.height,
    tileSize: ts,
    compression: 'jpeg',
    photometric,
    quality: q,
    description,
    compressionCode: options.levelCompressionCode,
    read: imageReader(im),
  });
  const strip = (im: RgbImage, description: string, subfileType: number, compression: 'jpeg' | 'none'): TiffPageSpec => ({
    width: im.width,
    height: im.height,
    compression,
    quality: q,
    description,
    subfileType,
    read: imageReader(im),
  });
  const thumbFactor = Math.max(1, Math.ceil(Math.max(img.width, img.height) / 768));
  const thumb = await downsampleImage(img, thumbFactor);
  const pages: TiffPageSpec[] = [
    level(img, desc),
    strip(
      thumb,
      `${lib}\r\n${img.width}x${img.height} -> ${thumb.width}x${thumb.height} - |AppMag = ${mag}|MPP = ${mpp.toFixed(4)}`,
      0,
      'jpeg',
    ),
  ];
  for (const f of options.downsamples ?? [4]) {
    const lv = await downsampleImage(img, f);
    pages.push(level(lv, `${lib}\r\n${img.width}x${img.height} -> ${lv.width}x${lv.height} - |AppMag = ${mag}|MPP = ${mpp.toFixed(4)}`));
  }
  if (options.label) pages.push(strip(options.label, `${lib}\nlabel ${options.label.width}x${options.label.height}`, 1, 'none'));
  if (options.macro) pages.push(strip(options.macro, `${lib}\nmacro ${options.macro.width}x${options.macro.height}`, 9, 'jpeg'));
  await writeTiff(path, pages, { bigTiff: options.bigTiff });
}
