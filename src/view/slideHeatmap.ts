import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { predictedClass, scopeProblems, type ModelMeta, type RgbImage } from '../core/index.ts';
import {
  bestLevelForDownsample,
  detectTissue,
  openSlide,
  planSlideTiles,
  readDatasetTile,
  readThumbnail,
  TileReader,
  slideMppOrFail,
  storedTilePixels,
  type SlideSource,
  type SlideTiling,
  type TileDataset,
  type TileRow,
  type TissueMask,
} from '../data/index.ts';
import { poolTileProbs, slideGrade, type SlideGrade } from '../eval/index.ts';
import { referralPriority, writeHeatmap, type HeatmapTile, type SlideHeatmap } from './heatmap.ts';

/** What a heatmap needs from a model: tile probabilities and features, and its OOD detector's verdicts. */
export interface HeatmapScorer {
  score(images: readonly RgbImage[]): Promise<{ probs: Float32Array; features: Float32Array; oodScores?: Float64Array }>;
  /** The primary detector's tile threshold. */
  tileThreshold?: number;
  /** One slide's aggregated OOD score and whether it passes the slide threshold. */
  slideOod?(tileScores: Float64Array): { score: number; flag: boolean };
}

/** An attention-MIL head over tile features (train's AttentionMil). */
export interface HeatmapMil {
  predict(bag: { slideId: string; features: Float32Array; n: number }): { probs: number[]; attention: ArrayLike<number> };
}

export type HeatmapPooling = 'mean' | 'topk' | 'attention';

export interface HeatmapModel {
  dir: string;
  meta: ModelMeta;
  scorer: HeatmapScorer;
  mil?: HeatmapMil;
  /** How tiles become the slide's grade: the same rule predict and eval are given. */
  pooling: HeatmapPooling;
}

/**
 * Where a slide's tiles come from: cut from the slide now with the model's tiling (and its storage
 * codec, so the pixels are those a dataset would hold), or the tiles a dataset already holds of it.
 */
export type HeatmapTiles = { kind: 'slide'; tiling: SlideTiling } | { kind: 'dataset'; ds: TileDataset; rows: readonly TileRow[] };

/** A slide to map: its file, what a manifest knows of it, and where its tiles come from. */
export interface HeatmapSlide {
  path: string;
  id?: string;
  /** Reference grade (the class value, e.g. ISUP 3), when labelled. */
  grade?: number;
  maskPath?: string;
  /** The scanner, as the manifest names it (checked against the model's intended use). */
  scanner?: string;
  /** Microns per pixel to use instead of the file's (a manifest's mpp column). */
  mpp?: number;
  /** Microns per pixel where the file records none (--slide-mpp, or the dataset's). */
  fallbackMpp?: number;
  tiles: HeatmapTiles;
}

/** `target` as seen from folder `from`, with forward slashes. */
function portablePath(from: string, target: string): string {
  return relative(resolve(from), resolve(target)).split(sep).join('/');
}

/** A label mask at the thumbnail's size, sampled nearest (labels must not blend). */
async function truthAtThumbnail(maskPath: string, width: number, height: number, downsample: number): Promise<RgbImage | undefined> {
  const mask = await openSlide(maskPath);
  try {
    const level = bestLevelForDownsample(mask.levels, downsample);
    const lv = mask.levels[level];
    // Masks are read whole at their chosen level; a level this large would not be, for a thumbnail.
    if (lv.width * lv.height > 64_000_000) return undefined;
    const region = await mask.readRegion(level, 0, 0, lv.width, lv.height);
    const buf = await sharp(region.data, { raw: { width: lv.width, height: lv.height, channels: 3 } })
      .resize(width, height, { kernel: 'nearest', fit: 'fill' })
      .raw()
      .toBuffer();
    return { width, height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
  } finally {
    await mask.close();
  }
}

/** A slide's tiles: level-0 positions, their footprint, and a reader of their pixels in batches. */
interface PlannedTiles {
  positions: { x: number; y: number }[];
  span: number;
  read(from: number, to: number): Promise<RgbImage[]>;
  close(): Promise<void>;
  mask?: TissueMask;
}

async function plannedTiles(slide: SlideSource, s: HeatmapSlide): Promise<PlannedTiles> {
  if (s.tiles.kind === 'slide') {
    const tiling = s.tiles.tiling;
    const { grid, mask } = await planSlideTiles(slide, tiling);
    return {
      positions: grid.tiles,
      span: tiling.tileSize * grid.downsample,
      read: (from, to) => Promise.all(grid.tiles.slice(from, to).map((p) => storedTilePixels(slide, p, tiling))),
      close: async () => undefined,
      mask,
    };
  }
  const { ds, rows } = s.tiles;
  const span = (ds.meta.tileSize * ds.meta.mpp) / slideMppOrFail(slide);
  // The tissue overlay only: the tiles are the dataset's.
  const mask = await detectTissue(slide, { method: ds.meta.tissueMethod });
  const reader = new TileReader();
  return {
    positions: rows.map((r) => ({ x: r.x, y: r.y })),
    span,
    read: (from, to) => Promise.all(rows.slice(from, to).map((r) => readDatasetTile(ds, r, reader))),
    close: () => reader.close(),
    mask,
  };
}

async function scoreTiles(planned: PlannedTiles, model: HeatmapModel, batch: number, onTiles?: (n: number) => void) {
  const { meta, scorer } = model;
  const k = meta.classes.length;
  const tiles: HeatmapTile[] = [];
  const scores: number[] = [];
  const features: Float32Array[] = [];
  for (let i = 0; i < planned.positions.length; i += batch) {
    const images = await planned.read(i, i + batch);
    const r = await scorer.score(images);
    const d = r.features.length / images.length;
    images.forEach((_, j) => {
      const probs = Array.from(r.probs.subarray(j * k, (j + 1) * k));
      const ood = r.oodScores ? r.oodScores[j] : null;
      if (ood !== null) scores.push(ood);
      features.push(r.features.slice(j * d, (j + 1) * d));
      const { x, y } = planned.positions[i + j];
      tiles.push({
        x,
        y,
        probs,
        pred: predictedClass(probs, meta.head),
        expected: probs.reduce((a, v, c) => a + v * c, 0),
        ood,
        oodFlag: ood === null || scorer.tileThreshold === undefined ? null : ood > scorer.tileThreshold,
        attention: null,
      });
    });
    onTiles?.(images.length);
  }
  return { tiles, scores, features };
}

/**
 * The slide's grade from its scored tiles, by the pooling predict and eval use: the mean or top-k of
 * tile probabilities, or the attention-MIL head's own probabilities (whose attention also lands on
 * each tile). Null without tiles.
 */
function gradeOfSlide(slideId: string, tiles: HeatmapTile[], features: Float32Array[], model: HeatmapModel): SlideGrade | null {
  if (!tiles.length) return null;
  const k = model.meta.classes.length;
  if (model.mil) {
    const d = features[0].length;
    const all = new Float32Array(tiles.length * d);
    features.forEach((f, i) => all.set(f, i * d));
    const { probs, attention } = model.mil.predict({ slideId, features: all, n: tiles.length });
    tiles.forEach((t, i) => (t.attention = attention[i]));
    // The MIL head is a softmax over classes whatever the tile head is.
    if (model.pooling === 'attention') return slideGrade(probs, 'softmax');
  }
  return poolTileProbs(
    tiles.length,
    k,
    (i) => tiles[i].probs,
    model.meta.head,
    model.pooling === 'topk' ? 'topk' : 'mean',
    undefined,
    model.meta.patternGrading,
  );
}

/**
 * One slide's heatmap: its tiles (cut as the model's tiling says, or a dataset's), scored by the model
 * (ONNX Runtime by default), its primary OOD detector and its attention-MIL head where they exist; the
 * slide grade comes from the same pooling as predict and eval.
 */
export async function heatmapOfSlide(
  s: HeatmapSlide,
  model: HeatmapModel,
  out: string,
  options: { batch: number; onTiles?: (n: number) => void; onPlanned?: (n: number) => void },
): Promise<SlideHeatmap> {
  const slide = await openSlide(s.path, { id: s.id, mpp: s.mpp, fallbackMpp: s.fallbackMpp });
  try {
    const { meta } = model;
    const planned = await plannedTiles(slide, s);
    let scored: Awaited<ReturnType<typeof scoreTiles>>;
    try {
      options.onPlanned?.(planned.positions.length);
      scored = await scoreTiles(planned, model, options.batch, options.onTiles);
    } finally {
      await planned.close();
    }
    const { tiles, scores, features } = scored;
    const grade = gradeOfSlide(slide.id, tiles, features, model);
    const slideOod = model.scorer.slideOod && scores.length ? model.scorer.slideOod(Float64Array.from(scores)) : undefined;
    const referenceIndex = s.grade === undefined ? -1 : meta.classes.indexOf(s.grade);
    const reference = referenceIndex < 0 ? null : referenceIndex;
    const thumb = await readThumbnail(slide, 1024);
    const { width, height } = slide.levels[0];
    const truth =
      s.maskPath && existsSync(s.maskPath)
        ? await truthAtThumbnail(s.maskPath, thumb.image.width, thumb.image.height, thumb.downsample)
        : undefined;
    const dir = join(out, slide.id);
    return await writeHeatmap(
      dir,
      {
        format: 'gradelab-heatmap/1',
        // Paths relative to the heatmap's folder: heatmaps, slides and model move together.
        slide: { id: slide.id, path: portablePath(dir, s.path), width, height, mpp: slide.mpp ?? null },
        model: { dir: portablePath(dir, model.dir), task: meta.task, head: meta.head, weightsSha256: meta.weightsSha256 ?? null },
        classes: meta.classes,
        tileSpan: planned.span,
        tiles,
        slidePrediction: grade && {
          pred: grade.pred,
          probs: grade.probs,
          uncertainty: grade.uncertainty,
          oodScore: slideOod?.score ?? null,
          oodFlag: slideOod?.flag ?? null,
          ...(grade.patterns ? { gleason: grade.gleason, patterns: grade.patterns } : {}),
        },
        reference,
        // Outside the intended use is said, never scored silently as if inside.
        scope: (() => {
          const reasons = scopeProblems(meta, { scanner: s.scanner ?? 'unknown', oodFlag: slideOod?.flag, slideMpp: slide.mpp });
          return { inScope: !reasons.length, reasons };
        })(),
        referralPriority: referralPriority(grade?.pred ?? null, reference, slideOod?.flag ?? null, grade?.uncertainty ?? 1),
      },
      { thumbnail: thumb.image, downsample: thumb.downsample, tissue: planned.mask, truth },
    );
  } finally {
    await slide.close();
  }
}
