import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { stringify } from 'csv-stringify/sync';
import { loadScannerProfile, simulateScanner, type ScannerProfile } from '../../augment/index.ts';
import {
  ConfigError,
  createImage,
  createRng,
  isupFromGleason,
  nottinghamGrade,
  shuffled,
  writeFileAtomic,
  type RgbImage,
  type Rng,
  type Task,
} from '../../core/index.ts';
import { writeTiff, type TiffPageSpec } from '../tiffWriter.ts';
import { renderRegion } from './render.ts';
import { buildScene } from './layout.ts';
import { ANOMALY_KINDS, NEAR_OOD, type AnomalyKind, type SlideDesign } from './scene.ts';
import { SITES, type SiteProtocol } from './sites.ts';

export interface SynthOptions {
  task: Task;
  slides: number;
  out: string;
  /** Number of sites (1-6), each with its own stain protocol and scanner. */
  sites?: number;
  /** Slide width in pixels at level 0 (prostate slides are half as tall; breast square). */
  size?: number;
  mpp?: number;
  /** Share of slides carrying a rare anomaly (0-1). */
  anomalies?: number;
  seed?: number;
  format?: 'tiff' | 'svs';
  /** Use only these sites (by name), e.g. to make an unseen site's data. */
  siteNames?: string[];
  /** Slides rendered at once in worker threads (default: every core; 1 renders on this thread). */
  workers?: number;
  /** Per rendered tile, when slides render on this thread (workers 1). */
  onTile?: () => void;
  onSlide?: (done: number, total: number, id: string, tiles: number) => void;
}

export interface SynthSlide extends SlideDesign {
  patientId: string;
  site: string;
  scanner: string;
  path: string;
  maskPath: string;
  grade: number;
  gleason?: string;
}

const TILE = 256;
const MARGIN = 24;

const GLEASON_FOR_ISUP: Record<number, [number, number][]> = {
  0: [[0, 0]],
  1: [[3, 3]],
  2: [[3, 4]],
  3: [[4, 3]],
  4: [
    [4, 4],
    [3, 5],
    [5, 3],
  ],
  5: [
    [4, 5],
    [5, 4],
    [5, 5],
  ],
};

function breastScores(grade: number, rng: Rng): [number, number, number] {
  const all: [number, number, number][] = [];
  for (let t = 1; t <= 3; t++)
    for (let p = 1; p <= 3; p++) for (let m = 1; m <= 3; m++) if (nottinghamGrade(t, p, m) === grade) all.push([t, p, m]);
  return all[rng.int(all.length)];
}

/** Slide designs: patients of 1-3 slides at one site each, grades balanced, anomalies on a seeded share. */
export function designSlides(options: SynthOptions): SynthSlide[] {
  const { task, slides: n } = options;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--slides must be a positive integer, got ${n}`);
  const size = options.size ?? 2048;
  if (!Number.isInteger(size) || size < 512 || size > 200_000) throw new ConfigError(`--size must be an integer 512-200000, got ${size}`);
  const mpp = options.mpp ?? 0.5;
  if (!(mpp >= 0.1 && mpp <= 2)) throw new ConfigError(`--mpp must be between 0.1 and 2, got ${mpp}`);
  const fraction = options.anomalies ?? 0.1;
  if (!(fraction >= 0 && fraction <= 1)) throw new ConfigError(`--anomalies must be between 0 and 1, got ${fraction}`);
  const sites = options.siteNames
    ? options.siteNames.map((name) => {
        const s = SITES.find((x) => x.name === name);
        if (!s) throw new ConfigError(`unknown site "${name}"; known: ${SITES.map((x) => x.name).join(', ')}`);
        return s;
      })
    : SITES.slice(0, options.sites ?? 3);
  if (sites.length < 1 || sites.length > SITES.length) throw new ConfigError(`--sites must be 1-${SITES.length}, got ${options.sites}`);
  const rng = createRng(options.seed ?? 1).fork(`synth-${task}`);
  const classes = task === 'prostate' ? [0, 1, 2, 3, 4, 5] : [1, 2, 3];
  const grades: number[] = [];
  while (grades.length < n) grades.push(...shuffled(classes, rng.fork(`grades-${grades.length}`)));
  const anomalous = new Set(
    shuffled(
      Array.from({ length: n }, (_, i) => i),
      rng.fork('anomalous'),
    ).slice(0, Math.round(n * fraction)),
  );
  const out: SynthSlide[] = [];
  let patient = 0;
  let left = 0;
  let site: SiteProtocol = sites[0];
  let anomalyCount = 0;
  for (let i = 0; i < n; i++) {
    if (left === 0) {
      left = [1, 1, 2, 3][rng.int(4)];
      site = sites[patient % sites.length];
      patient++;
    }
    left--;
    const id = `${task === 'prostate' ? 'p' : 'b'}${String(i).padStart(4, '0')}`;
    const grade = grades[i];
    const r = rng.fork(id);
    const anomaly: AnomalyKind | '' = anomalous.has(i) ? ANOMALY_KINDS[anomalyCount++ % ANOMALY_KINDS.length] : '';
    const base = {
      id,
      task,
      width: size,
      height: task === 'prostate' ? Math.round(size / 2) : size,
      mpp,
      seed: `${options.seed ?? 1}/${id}`,
      anomaly,
      patientId: `patient-${String(patient).padStart(3, '0')}`,
      site: site.name,
      scanner: site.scanner,
      path: `slides/${id}.${options.format === 'svs' ? 'svs' : 'tiff'}`,
      maskPath: `masks/${id}_mask.tiff`,
      grade,
    };
    if (task === 'prostate') {
      const choices = GLEASON_FOR_ISUP[grade];
      const [primary, secondary] = choices[r.int(choices.length)];
      if (isupFromGleason(primary, secondary) !== grade) throw new Error('unreachable: Gleason table disagrees with the ISUP rule');
      out.push({ ...base, primary, secondary, gleason: grade === 0 ? 'negative' : `${primary}+${secondary}` });
    } else {
      const [tubules, pleomorphism, mitoses] = breastScores(grade, r);
      out.push({ ...base, tubules, pleomorphism, mitoses });
    }
  }
  return out;
}

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

export const SYNTH_MANIFEST = 'manifest.csv';

function manifestRows(task: Task, slides: SynthSlide[]): string[][] {
  if (task === 'prostate') {
    return [
      ['image_id', 'data_provider', 'isup_grade', 'gleason_score', 'path', 'mask_path', 'patient_id', 'site', 'scanner', 'anomaly', 'ood'],
      ...slides.map((s) => [
        s.id,
        s.site,
        String(s.grade),
        s.gleason!,
        s.path,
        s.maskPath,
        s.patientId,
        s.site,
        s.scanner,
        s.anomaly,
        s.anomaly ? (NEAR_OOD.includes(s.anomaly) ? 'near' : 'far') : '',
      ]),
    ];
  }
  return [
    [
      'image_id',
      'path',
      'mask_path',
      'patient_id',
      'site',
      'scanner',
      'nottingham_grade',
      'tubules',
      'pleomorphism',
      'mitoses',
      'anomaly',
      'ood',
    ],
    ...slides.map((s) => [
      s.id,
      s.path,
      s.maskPath,
      s.patientId,
      s.site,
      s.scanner,
      String(s.grade),
      String(s.tubules),
      String(s.pleomorphism),
      String(s.mitoses),
      s.anomaly,
      s.anomaly ? (NEAR_OOD.includes(s.anomaly) ? 'near' : 'far') : '',
    ]),
  ];
}

/**
 * Generates a synthetic dataset: slides/ (pyramidal JPEG TIFF or SVS), masks/ (label masks), and
 * manifest.csv. Deterministic per seed; slides already present from the same settings are kept, so
 * an interrupted run resumes.
 */
export async function generateSynthetic(options: SynthOptions): Promise<{ manifest: string; slides: SynthSlide[] }> {
  const slides = designSlides(options);
  await mkdir(options.out, { recursive: true });
  const settings = JSON.stringify({
    task: options.task,
    slides: options.slides,
    sites: options.sites ?? 3,
    siteNames: options.siteNames ?? null,
    size: options.size ?? 2048,
    mpp: options.mpp ?? 0.5,
    anomalies: options.anomalies ?? 0.1,
    seed: options.seed ?? 1,
    format: options.format ?? 'tiff',
  });
  const settingsPath = join(options.out, 'synth.json');
  if (existsSync(settingsPath) && readFileSync(settingsPath, 'utf8') !== settings) {
    throw new ConfigError(`${options.out} already holds synthetic slides made with other settings; choose a new --out or remove it`);
  }
  await writeFileAtomic(settingsPath, settings);
  let done = 0;
  const pending = slides.filter((s) => !(existsSync(join(options.out, s.path)) && existsSync(join(options.out, s.maskPath))));
  for (const s of slides) if (!pending.includes(s)) options.onSlide?.(++done, slides.length, s.id, 0);
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1))
    throw new ConfigError(`--workers must be a positive integer, got ${options.workers}`);
  const workers = Math.min(options.workers ?? availableParallelism(), pending.length);
  if (workers > 1) {
    // Slides are independent and each is deterministic from its own seed: render several at once.
    const pool = new Piscina({
      filename: fileURLToPath(new URL('./renderWorker.mjs', import.meta.url)),
      minThreads: workers,
      maxThreads: workers,
    });
    try {
      await Promise.all(
        pending.map(async (s) => {
          const tiles = (await pool.run({ slide: s, out: options.out, format: options.format })) as number;
          options.onSlide?.(++done, slides.length, s.id, tiles);
        }),
      );
    } finally {
      await pool.destroy();
    }
  } else {
    for (const s of pending) {
      const tiles = await renderSlide(s, options.out, { format: options.format, onTile: options.onTile });
      options.onSlide?.(++done, slides.length, s.id, tiles);
    }
  }
  const manifest = join(options.out, SYNTH_MANIFEST);
  await writeFileAtomic(manifest, stringify(manifestRows(options.task, slides)));
  return { manifest, slides };
}
