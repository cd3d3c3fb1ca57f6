import { open, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { InputError, InvalidSlideError, UnsupportedSlideError } from '../core/index.ts';
import { openImageSlide } from './imageSlide.ts';
import { checkedSlide, type SlideSource } from './slide.ts';
import { openTiffSlide, type TiffSlideOptions } from './tiffSlide.ts';

export type SlideFormat = 'tiff' | 'bigtiff' | 'png' | 'jpeg';

/** Reads the first bytes: the format is decided by content, whatever the file is called. */
export function sniffFormat(head: Uint8Array): SlideFormat | undefined {
  const b = head;
  if (b.length >= 4) {
    if (b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) return 'tiff';
    if (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42) return 'tiff';
    if (b[0] === 0x49 && b[1] === 0x49 && b[2] === 43 && b[3] === 0) return 'bigtiff';
    if (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 43) return 'bigtiff';
    if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  return undefined;
}

/** The slide id a path gets by default: the file name without its (last) extension. */
export function slideIdFromPath(path: string): string {
  const name = basename(path);
  return name.slice(0, name.length - extname(name).length) || name;
}

export interface OpenSlideOptions extends TiffSlideOptions {
  id?: string;
  /** Microns per level-0 pixel to use instead of what the file says (a manifest's mpp column). */
  mpp?: number;
  /** Microns per level-0 pixel for a file that records none (--slide-mpp). */
  fallbackMpp?: number;
}

/**
 * Opens a whole-slide image or a plain image: generic tiled pyramidal TIFF/BigTIFF, Aperio SVS with
 * JPEG tiles, or PNG/JPEG/flat TIFF as one level. The reader is chosen by the file's magic bytes.
 */
export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<SlideSource> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new InputError(`${path}: not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read (${code ?? (err as Error).message})`);
  }
  if (size === 0) throw new InvalidSlideError(path, 'file is empty');
  const head = new Uint8Array(132);
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, 132, 0);
  } finally {
    await fh.close();
  }
  const format = sniffFormat(head.subarray(0, Math.min(16, size)));
  // DICOM Part 10: a 128-byte preamble, then "DICM".
  if (!format && size >= 132 && String.fromCharCode(...head.subarray(128, 132)) === 'DICM') {
    throw new UnsupportedSlideError(
      path,
      'DICOM whole-slide images are not supported: convert the series to a pyramidal TIFF first (e.g. with wsidicomizer or bfconvert)',
    );
  }
  if (!format) {
    throw new InvalidSlideError(path, 'not a slide: unrecognised magic bytes (expected TIFF, BigTIFF, SVS, PNG or JPEG)');
  }
  if (size < (format === 'bigtiff' ? 16 : 8)) throw new InvalidSlideError(path, `file is truncated (${size} bytes)`);
  const reader = format === 'png' || format === 'jpeg' ? await openImageSlide(path) : await openTiffSlide(path, size, options);
  for (const v of [options.mpp, options.fallbackMpp])
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) throw new InputError(`${path}: slide mpp must be a positive number, got ${v}`);
  return checkedSlide(
    options.id ?? slideIdFromPath(path),
    reader,
    path,
    options.mpp ?? (reader.mpp === undefined ? options.fallbackMpp : undefined),
  );
}
