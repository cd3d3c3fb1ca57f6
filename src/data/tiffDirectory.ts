import type { FileHandle } from 'node:fs/promises';
import { InvalidSlideError } from '../core/index.ts';

/**
 * A TIFF or BigTIFF directory read entry by entry: each entry's type, count and where its values lie,
 * and nothing more until asked. Arrays are read only through `values`, which checks their size against
 * what the caller expects first, so a hostile count (2^30 tile offsets) is refused before any byte of
 * it is read, as libtiff does.
 */
export interface TiffEntry {
  tag: number;
  type: number;
  count: number;
  /** File offset of the values, or -1 when they sit inline in `inline`. */
  offset: number;
  inline: Uint8Array;
}

export interface TiffDirectory {
  index: number;
  /** File offset of the directory itself. */
  at: number;
  entries: Map<number, TiffEntry>;
}

export interface TiffFile {
  path: string;
  fh: FileHandle;
  size: number;
  little: boolean;
  big: boolean;
  directories: TiffDirectory[];
}

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  Make: 271,
  Model: 272,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Software: 305,
  DateTime: 306,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
  YCbCrSubSampling: 530,
} as const;

/** Bytes per value of each TIFF field type (BYTE .. IFD8). */
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};
/** Directories a slide may hold: pyramid levels plus associated images; more is a loop or garbage. */
const MAX_DIRECTORIES = 1024;
/** Entries per directory: a real one has 10-40. */
const MAX_ENTRIES = 4096;
/** The largest array this reader loads at once (a tile index of 16 M tiles, or a long description). */
export const MAX_ARRAY_BYTES = 128 << 20;

async function readAt(file: Pick<TiffFile, 'fh' | 'size' | 'path'>, offset: number, length: number, what: string): Promise<Uint8Array> {
  if (offset < 0 || length < 0 || offset + length > file.size) {
    throw new InvalidSlideError(file.path, `${what} lies past the end of the file (bytes ${offset}..${offset + length} of ${file.size})`);
  }
  const buf = new Uint8Array(length);
  const { bytesRead } = await file.fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw new InvalidSlideError(file.path, `short read of ${what} at byte ${offset}: the file is truncated`);
  return buf;
}

/** Reads the header and every directory's entry table (not the arrays they point to). */
export async function readTiff(path: string, fh: FileHandle, size: number): Promise<TiffFile> {
  const head = await readAt({ fh, size, path }, 0, Math.min(16, size), 'the TIFF header');
  const little = head[0] === 0x49;
  const view = new DataView(head.buffer);
  const magic = view.getUint16(2, little);
  const big = magic === 43;
  if (big && (view.getUint16(4, little) !== 8 || view.getUint16(6, little) !== 0)) {
    throw new InvalidSlideError(path, 'BigTIFF header declares an offset size other than 8 bytes');
  }
  let next = big ? Number(view.getBigUint64(8, little)) : view.getUint32(4, little);
  const file: TiffFile = { path, fh, size, little, big, directories: [] };
  const seen = new Set<number>();
  while (next !== 0) {
    if (file.directories.length >= MAX_DIRECTORIES) throw new InvalidSlideError(path, `more than ${MAX_DIRECTORIES} TIFF directories`);
    const index = file.directories.length;
    if (seen.has(next)) throw new InvalidSlideError(path, 'TIFF directory chain loops back on itself');
    seen.add(next);
    const where = index === 0 ? 'the first TIFF directory' : `TIFF directory ${index}`;
    const countBytes = await readAt(file, next, big ? 8 : 2, where);
    const cv = new DataView(countBytes.buffer);
    const n = big ? Number(cv.getBigUint64(0, little)) : cv.getUint16(0, little);
    if (n === 0 || n > MAX_ENTRIES) throw new InvalidSlideError(path, `TIFF directory ${index} declares ${n} entries`);
    const entrySize = big ? 20 : 12;
    const table = await readAt(file, next + (big ? 8 : 2), n * entrySize + (big ? 8 : 4), where);
    const tv = new DataView(table.buffer);
    const entries = new Map<number, TiffEntry>();
    for (let e = 0; e < n; e++) {
      const o = e * entrySize;
      const tag = tv.getUint16(o, little);
      const type = tv.getUint16(o + 2, little);
      const count = big ? Number(tv.getBigUint64(o + 4, little)) : tv.getUint32(o + 4, little);
      const valueBytes = (TYPE_SIZE[type] ?? 0) * count;
      const inlineSize = big ? 8 : 4;
      const inline = table.slice(o + (big ? 12 : 8), o + (big ? 12 : 8) + inlineSize);
      const offset = valueBytes <= inlineSize ? -1 : big ? Number(tv.getBigUint64(o + 12, little)) : tv.getUint32(o + 8, little);
      // Unknown types are kept (and never read): writers add private tags of their own.
      entries.set(tag, { tag, type, count, offset, inline });
    }
    file.directories.push({ index, at: next, entries });
    const nv = n * entrySize;
    next = big ? Number(tv.getBigUint64(nv, little)) : tv.getUint32(nv, little);
    if (next >= size) throw new InvalidSlideError(path, `TIFF directory ${index} points past the end of the file for the next one`);
  }
  if (!file.directories.length) throw new InvalidSlideError(path, 'TIFF has no image directories');
  return file;
}

function readValue(view: DataView, type: number, at: number, little: boolean): number {
  switch (type) {
    case 1:
    case 2:
    case 7:
      return view.getUint8(at);
    case 6:
      return view.getInt8(at);
    case 3:
      return view.getUint16(at, little);
    case 8:
      return view.getInt16(at, little);
    case 4:
    case 13:
      return view.getUint32(at, little);
    case 9:
      return view.getInt32(at, little);
    case 5: {
      const d = view.getUint32(at + 4, little);
      return d === 0 ? NaN : view.getUint32(at, little) / d;
    }
    case 10: {
      const d = view.getInt32(at + 4, little);
      return d === 0 ? NaN : view.getInt32(at, little) / d;
    }
    case 11:
      return view.getFloat32(at, little);
    case 12:
      return view.getFloat64(at, little);
    case 16:
    case 18:
      return Number(view.getBigUint64(at, little));
    case 17:
      return Number(view.getBigInt64(at, little));
    default:
      return NaN;
  }
}

/**
 * The values of a tag as numbers, read only when the count is what the caller allows: `expect` is the
 * exact count, or `max` the most. Absent tags give undefined.
 */
export async function values(
  file: TiffFile,
  dir: TiffDirectory,
  tag: number,
  limit: { expect?: number; max?: number },
): Promise<number[] | undefined> {
  const e = dir.entries.get(tag);
  if (!e) return undefined;
  const size = TYPE_SIZE[e.type];
  if (!size || e.type === 2) throw new InvalidSlideError(file.path, `directory ${dir.index}: tag ${tag} has type ${e.type}, not a number`);
  if (limit.expect !== undefined && e.count !== limit.expect) {
    throw new InvalidSlideError(file.path, `directory ${dir.index}: tag ${tagName(tag)} holds ${e.count} values, expected ${limit.expect}`);
  }
  if (limit.max !== undefined && e.count > limit.max) {
    throw new InvalidSlideError(
      file.path,
      `directory ${dir.index}: tag ${tagName(tag)} holds ${e.count} values, at most ${limit.max} make sense`,
    );
  }
  if (e.count * size > MAX_ARRAY_BYTES)
    throw new InvalidSlideError(file.path, `directory ${dir.index}: tag ${tagName(tag)} is ${e.count * size} bytes long`);
  const bytes = e.offset < 0 ? e.inline : await readAt(file, e.offset, e.count * size, `tag ${tagName(tag)} of directory ${dir.index}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: e.count }, (_, i) => readValue(view, e.type, i * size, file.little));
}

/** One number (the first value) of a tag, or undefined. */
export async function value(file: TiffFile, dir: TiffDirectory, tag: number, max = 16): Promise<number | undefined> {
  return (await values(file, dir, tag, { max }))?.[0];
}

/** An ASCII (or undefined-type) tag as text, without trailing NULs; bounded like any array. */
export async function text(file: TiffFile, dir: TiffDirectory, tag: number): Promise<string | undefined> {
  const e = dir.entries.get(tag);
  if (!e || (e.type !== 2 && e.type !== 7 && e.type !== 1)) return undefined;
  if (e.count > MAX_ARRAY_BYTES)
    throw new InvalidSlideError(file.path, `directory ${dir.index}: tag ${tagName(tag)} is ${e.count} bytes long`);
  const bytes =
    e.offset < 0 ? e.inline.subarray(0, e.count) : await readAt(file, e.offset, e.count, `tag ${tagName(tag)} of directory ${dir.index}`);
  return new TextDecoder('latin1').decode(bytes).replace(/\0+$/, '');
}

/** Raw bytes of an undefined-type tag (JPEGTables). */
export async function bytes(file: TiffFile, dir: TiffDirectory, tag: number, max: number): Promise<Uint8Array | undefined> {
  const e = dir.entries.get(tag);
  if (!e) return undefined;
  const size = (TYPE_SIZE[e.type] ?? 1) * e.count;
  if (size > max)
    throw new InvalidSlideError(file.path, `directory ${dir.index}: tag ${tagName(tag)} is ${size} bytes long, at most ${max} make sense`);
  return e.offset < 0 ? e.inline.subarray(0, size) : readAt(file, e.offset, size, `tag ${tagName(tag)} of directory ${dir.index}`);
}

/** Reads a block (a tile or strip's compressed bytes). */
export function readBlock(file: TiffFile, offset: number, count: number, what: string): Promise<Uint8Array> {
  return readAt(file, offset, count, what);
}

const NAMES = Object.fromEntries(Object.entries(TAG).map(([k, v]) => [v, k])) as Record<number, string>;

export function tagName(tag: number): string {
  return NAMES[tag] ?? String(tag);
}
