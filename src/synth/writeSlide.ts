import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadScannerProfile, simulateScanner, type ScannerProfile } from '../augment/index.ts';
import { createImage, createRng, type RgbImage } from '../core/index.ts';
import { writeTiff, type TiffPageSpec } from '../data/index.ts';
import type { SynthSlide } from './design.ts';
import { buildScene } from './layout.ts';
import { renderRegion } from './render.ts';
import { SITES } from './sites.ts';

// One designed slide rendered tile by tile into a pyramidal TIFF (or SVS) and its label mask.

const TILE = 256;
const MARGIN = 24;

/** Area-average 4x downsample of a tile into a lower-level buffer. */
function accumulateDown(tile: RgbImage, into: RgbImage, x: number, y: number, f: number): void {
  const ox = Math.floor(x / f);
  const oy = Math.floor(y / f);
  const w = Math.floor(tile.width / f);
  const h = Math.floor(tile.height / f);
  for (let j = 0; j < h && oy + j < into.height; j++) {
    for (let i = 0; i < w && ox + i < into.width; i++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let b = 0; b < f; b++) for (let a = 0; a < f; a++) s += tile.data[((j * f + b) * tile.width + i * f + a) * 3 + c];
        into.data[((oy + j) * into.width + ox + i) * 3 + c] = s / (f * f) + 0.5;
      }
    }
  }
}

function readFrom(img: RgbImage) {
  return (x: number, y: number, w: number, h: number): RgbImage => {
    const out = createImage(w, h);
    for (let r = 0; r < h && y + r < img.height; r++) {
      const len = Math.min(w, img.width - x) * 3;
      if (len > 0) out.data.set(img.data.subarray(((y + r) * img.width + x) * 3, ((y + r) * img.width + x) * 3 + len), r * w * 3);
    }
    return out;
  };
}

/** Renders one slide to a pyramidal JPEG TIFF (or SVS) and its label mask; returns the tile count. */
export async function renderSlide(
  slide: SynthSlide,
  out: string,
  options: { format?: 'tiff' | 'svs'; onTile?: () => void } = {},
): Promise<number> {
  const scene = buildScene(slide);
  const site = SITES.find((s) => s.name === slide.site)!;
  const scannerProfile = loadScannerProfile(slide.scanner);
  // Per-field shading and re-compression belong to the writer and the viewer, not to each tile.
  const profile: ScannerProfile = { ...scannerProfile, illumination: { vignette: 0, gradient: 0 }, jpegQuality: 100 };
  const { width: W, height: H } = slide;
  const labels = new Uint8Array(W * H);
  const level1 = createImage(Math.ceil(W / 4), Math.ceil(H / 4));
  let tiles = 0;
  const tileReader = async (x: number, y: number, w: number, h: number): Promise<RgbImage> => {
    const mx = x - MARGIN;
    const my = y - MARGIN;
    const mw = w + 2 * MARGIN;
    const mh = h + 2 * MARGIN;
    const r = renderRegion(scene, site, mx, my, mw, mh);
    let img = r.rgb;
    if (r.blur) {
      const blurred = await sharp(img.data, { raw: { width: mw, height: mh, channels: 3 } })
        .blur(4 / slide.mpp)
        .raw()
        .toBuffer();
      const mixed = createImage(mw, mh, 0);
      for (let p = 0; p < mw * mh; p++)
        for (let c = 0; c < 3; c++)
          mixed.data[p * 3 + c] = img.data[p * 3 + c] + r.blur[p] * (blurred[p * 3 + c] - img.data[p * 3 + c]) + 0.5;
      img = mixed;
    }
    img = await simulateScanner(img, profile, slide.mpp, createRng(`${slide.seed}/scan/${x}/${y}`));
    const tile = createImage(w, h, 0);
    for (let j = 0; j < h; j++) {
      tile.data.set(img.data.subarray(((j + MARGIN) * mw + MARGIN) * 3, ((j + MARGIN) * mw + MARGIN + w) * 3), j * w * 3);
      for (let i = 0; i < w; i++) if (x + i < W && y + j < H) labels[(y + j) * W + x + i] = r.labels[(j + MARGIN) * mw + MARGIN + i];
    }
    accumulateDown(tile, level1, x, y, 4);
    tiles++;
    options.onTile?.();
    return tile;
  };
  const quality = scannerProfile.jpegQuality;
  const level2 = async () => {
    const buf = await sharp(level1.data, { raw: { width: level1.width, height: level1.height, channels: 3 } })
      .resize(Math.ceil(W / 16), Math.ceil(H / 16), { kernel: 'linear', fit: 'fill' })
      .raw()
      .toBuffer();
    return { width: Math.ceil(W / 16), height: Math.ceil(H / 16), data: new Uint8Array(buf) };
  };
  let l2: RgbImage | undefined;
  const lazyL2 = async (x: number, y: number, w: number, h: number) => readFrom((l2 ??= await level2()))(x, y, w, h);
  const mpp = slide.mpp;
  const svs = options.format === 'svs';
  const lib = 'Aperio Image Library v12.0.15';
  const desc = (w: number, h: number) =>
    `${lib}\r\n${W}x${H} -> ${w}x${h} - |AppMag = ${Math.round(10 / mpp)}|MPP = ${mpp.toFixed(4)}|ScanScope ID = ${slide.scanner}`;
  const pages: TiffPageSpec[] = [
    {
      width: W,
      height: H,
      tileSize: TILE,
      compression: 'jpeg',
      quality,
      mpp: svs ? undefined : mpp,
      read: tileReader,
      description: svs
        ? `${lib}\r\n${W}x${H} [0,0 ${W}x${H}] (${TILE}x${TILE}) JPEG/YCbCr Q=${quality}|AppMag = ${Math.round(10 / mpp)}|MPP = ${mpp.toFixed(4)}|ScanScope ID = ${slide.scanner}|Filename = ${slide.id}`
        : `gradelab synthetic ${slide.task} slide ${slide.id}`,
    },
  ];
  if (svs)
    pages.push({
      width: Math.ceil(W / 16),
      height: Math.ceil(H / 16),
      compression: 'jpeg',
      quality,
      description: desc(Math.ceil(W / 16), Math.ceil(H / 16)),
      read: lazyL2,
    });
  pages.push({
    width: level1.width,
    height: level1.height,
    tileSize: TILE,
    compression: 'jpeg',
    quality,
    mpp: svs ? undefined : mpp * 4,
    subfileType: svs ? 0 : 1,
    description: svs ? desc(level1.width, level1.height) : undefined,
    read: readFrom(level1),
  });
  pages.push({
    width: Math.ceil(W / 16),
    height: Math.ceil(H / 16),
    tileSize: TILE,
    compression: 'jpeg',
    quality,
    mpp: svs ? undefined : mpp * 16,
    subfileType: svs ? 0 : 1,
    description: svs ? desc(Math.ceil(W / 16), Math.ceil(H / 16)) : undefined,
    read: lazyL2,
  });
  await mkdir(join(out, 'slides'), { recursive: true });
  await mkdir(join(out, 'masks'), { recursive: true });
  await writeTiff(join(out, slide.path), pages, { bigTiff: W * H * 3 > 3e9 });
  const maskTmp = join(out, `${slide.maskPath}.tmp.tiff`);
  await sharp(labels, { raw: { width: W, height: H, channels: 1 } })
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'deflate', xres: 1000 / mpp, yres: 1000 / mpp, resolutionUnit: 'cm' })
    .toFile(maskTmp);
  const { rename } = await import('node:fs/promises');
  await rename(maskTmp, join(out, slide.maskPath));
  return tiles;
}
