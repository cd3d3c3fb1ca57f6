import { open, type FileHandle } from 'node:fs/promises';
import { blit, createImage, type RgbImage } from '../core/index.ts';
import { aperioAssociatedName, isAperioDescription, parseAperioDescription, positiveNumber } from './aperio.ts';
import type { SlideLevel, SlideReader, SlideVendor } from './slide.ts';
import { blockRows, decodeBlock } from './tiffBlocks.ts';
import { readTiff, TAG, text, value, type TiffFile } from './tiffDirectory.ts';
import { describeImage, peekImage, refuseMultiPlane, type TiffImage } from './tiffImage.ts';
import { DEFAULT_TILE_CACHE_BYTES, TileCache } from './tileCache.ts';

export { MAX_SLIDE_SIDE } from './tiffImage.ts';

export interface TiffSlideOptions {
  cacheBytes?: number;
}

/** Blocks decoded at once for one region: enough to keep libvips' threads busy, few enough to bound memory. */
const BLOCKS_IN_FLIGHT = 8;

/** Microns per pixel from the resolution tags, when they describe a microscope (not 72 dpi). */
async function resolutionMpp(file: TiffFile, img: TiffImage): Promise<{ x?: number; y?: number }> {
  const xres = await value(file, img.dir, TAG.XResolution, 1);
  const yres = await value(file, img.dir, TAG.YResolution, 1);
  const unit = (await value(file, img.dir, TAG.ResolutionUnit, 1)) ?? 2;
  const perUnit = unit === 3 ? 10_000 : unit === 2 ? 25_400 : undefined;
  const mpp = (res: number | undefined) => {
    const m = perUnit && res && res > 0 ? perUnit / res : undefined;
    // libvips and others write placeholder resolutions (72 dpi, 1 px/mm): not a microscope's.
    return m !== undefined && m >= 0.05 && m <= 20 ? m : undefined;
  };
  return { x: mpp(xres), y: mpp(yres ?? xres) };
}

/** OpenSlide-style property map: the vendor's key/values and the TIFF tags of interest. */
async function slideProperties(
  file: TiffFile,
  first: TiffImage,
  levels: TiffLevel[],
  vendor: SlideVendor,
  mpp: { x?: number; y?: number },
  power?: number,
): Promise<Record<string, string>> {
  const p: Record<string, string> = { 'openslide.vendor': vendor, 'openslide.level-count': String(levels.length) };
  if (mpp.x) p['openslide.mpp-x'] = String(mpp.x);
  if (mpp.y) p['openslide.mpp-y'] = String(mpp.y);
  if (power) p['openslide.objective-power'] = String(power);
  levels.forEach((l, i) => {
    p[`openslide.level[${i}].width`] = String(l.width);
    p[`openslide.level[${i}].height`] = String(l.height);
    p[`openslide.level[${i}].downsample`] = String(l.downsample);
    p[`openslide.level[${i}].tile-width`] = String(l.img.blockWidth);
    p[`openslide.level[${i}].tile-height`] = String(l.img.blockHeight);
  });
  if (vendor === 'aperio' && first.description) {
    for (const [k, v] of Object.entries(parseAperioDescription(first.description))) p[`aperio.${k}`] = v;
  }
  for (const [name, tag] of [
    ['ImageDescription', TAG.ImageDescription],
    ['Make', TAG.Make],
    ['Model', TAG.Model],
    ['Software', TAG.Software],
    ['DateTime', TAG.DateTime],
  ] as const) {
    const t = await text(file, first.dir, tag);
    if (t) p[`tiff.${name}`] = t;
  }
  for (const [name, tag] of [
    ['XResolution', TAG.XResolution],
    ['YResolution', TAG.YResolution],
  ] as const) {
    const v = await value(file, first.dir, tag, 1);
    if (v !== undefined && Number.isFinite(v)) p[`tiff.${name}`] = String(v);
  }
  const unit = await value(file, first.dir, TAG.ResolutionUnit, 1);
  if (unit !== undefined) p['tiff.ResolutionUnit'] = unit === 3 ? 'centimeter' : unit === 2 ? 'inch' : 'none';
  p['tiff.Compression'] = String(first.compression);
  return p;
}

interface TiffLevel extends SlideLevel {
  img: TiffImage;
}

/**
 * Pyramidal TIFF, BigTIFF and Aperio SVS. Every directory used is checked when the file is opened
 * (tiffImage.ts): a file is read right or refused at `slide info`, never half-way through a region.
 * Every error path closes the file.
 */
export async function openTiffSlide(path: string, fileSize: number, options: TiffSlideOptions = {}): Promise<SlideReader> {
  const fh: FileHandle = await open(path, 'r');
  try {
    return await openWith(path, fh, fileSize, options);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function openWith(path: string, fh: FileHandle, fileSize: number, options: TiffSlideOptions): Promise<SlideReader> {
  const file = await readTiff(path, fh, fileSize);
  const peeks = [];
  for (const dir of file.directories) peeks.push({ index: dir.index, ...(await peekImage(file, dir)) });
  refuseMultiPlane(file, peeks);

  const aperio = isAperioDescription(peeks[0].description);
  const vendor: SlideVendor = aperio ? 'aperio' : 'generic-tiff';
  const tiled = peeks.filter((d) => d.tiled);
  // A TIFF without tiles is a flat image: one level, read strip by strip.
  const candidates = (tiled.length ? tiled : [peeks[0]]).slice().sort((a, b) => b.width - a.width);
  const unique = candidates.filter((d, i) => i === 0 || d.width < candidates[i - 1].width);
  const w0 = unique[0].width;
  const h0 = unique[0].height;
  const levels: TiffLevel[] = [];
  for (const d of unique) {
    const img = await describeImage(file, file.directories[d.index]);
    levels.push({ width: img.width, height: img.height, downsample: (w0 / img.width + h0 / img.height) / 2, img });
  }

  const associated = new Map<string, TiffImage>();
  if (aperio) {
    for (const d of peeks) {
      if (d.tiled) continue;
      const name = d.index === 1 ? 'thumbnail' : aperioAssociatedName(d.description);
      if (name && !associated.has(name)) associated.set(name, await describeImage(file, file.directories[d.index]));
    }
  }

  let mpp: { x?: number; y?: number };
  let objectivePower: number | undefined;
  if (aperio) {
    const props = parseAperioDescription(peeks[0].description!);
    const m = positiveNumber(props.MPP);
    mpp = { x: m, y: m };
    objectivePower = positiveNumber(props.AppMag);
  } else {
    mpp = await resolutionMpp(file, levels[0].img);
  }
  const properties = await slideProperties(file, levels[0].img, levels, vendor, mpp, objectivePower);
  const cache = new TileCache(options.cacheBytes ?? DEFAULT_TILE_CACHE_BYTES);

  /** A rectangle of one image, block by block (cached), BLOCKS_IN_FLIGHT at a time. */
  async function readRect(img: TiffImage, key: string, of: string, x: number, y: number, w: number, h: number): Promise<RgbImage> {
    const { blockWidth: bw, blockHeight: bh } = img;
    const out = createImage(w, h, 0);
    const blocks: number[] = [];
    for (let by = Math.floor(y / bh); by <= Math.floor((y + h - 1) / bh); by++) {
      for (let bx = Math.floor(x / bw); bx <= Math.floor((x + w - 1) / bw); bx++) blocks.push(by * img.blocksAcross + bx);
    }
    let next = 0;
    const worker = async () => {
      while (next < blocks.length) {
        const index = blocks[next++];
        const data = await cache.get(`${key}:${index}`, () => decodeBlock(file, img, index, of));
        const bx = index % img.blocksAcross;
        const by = Math.floor(index / img.blocksAcross);
        blit(out, { width: bw, height: blockRows(img, index), data }, bx * bw - x, by * bh - y);
      }
    };
    await Promise.all(Array.from({ length: Math.min(BLOCKS_IN_FLIGHT, blocks.length) }, worker));
    return out;
  }

  return {
    levels: levels.map(({ width, height, downsample }) => ({ width, height, downsample })),
    mpp: mpp.x && mpp.y ? (mpp.x + mpp.y) / 2 : (mpp.x ?? mpp.y),
    mppX: mpp.x,
    mppY: mpp.y,
    objectivePower,
    vendor,
    properties,
    associatedImages: [...associated.keys()],
    readLevelRect(li, x, y, w, h) {
      return readRect(levels[li].img, `L${li}`, `level ${li}`, x, y, w, h);
    },
    readAssociatedImage(name) {
      const img = associated.get(name)!;
      return readRect(img, `A${name}`, `the ${name} image`, 0, 0, img.width, img.height);
    },
    async close() {
      cache.clear();
      await fh.close();
    },
  };
}
