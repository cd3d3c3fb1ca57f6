import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { predictedClass, type ModelMeta, type RgbImage } from '../core/index.ts';
import { bestLevelForDownsample, detectTissue, openSlide, planTiles, readThumbnail, readTile, type SlideSource } from '../data/index.ts';
import type { AttentionMil } from '../train/index.ts';
import { meanPool, referralPriority, writeHeatmap, type HeatmapTile, type SlideHeatmap } from '../view/index.ts';
import type { ModelScorer } from './modelScorer.ts';

/** A slide to map: its file, and what a manifest knows of it. */
export interface HeatmapSlide {
  path: string;
  id?: string;
  /** Reference grade (the class value, e.g. ISUP 3), when labelled. */
  grade?: number;
  maskPath?: string;
  mpp?: number;
}

export interface HeatmapModel {
  dir: string;
  meta: ModelMeta;
  scorer: ModelScorer;
  mil?: AttentionMil;
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

async function scoreTiles(
  slide: SlideSource,
  plan: ReturnType<typeof planTiles>,
  model: HeatmapModel,
  batch: number,
  onTiles?: (n: number) => void,
) {
  const { meta, scorer } = model;
  const k = meta.classes.length;
  const tiles: HeatmapTile[] = [];
  const scores: number[] = [];
  const features: Float32Array[] = [];
  for (let i = 0; i < plan.tiles.length; i += batch) {
    const chunk = plan.tiles.slice(i, i + batch);
    const images = await Promise.all(chunk.map((p) => readTile(slide, p, meta.tileSize)));
    const r = await scorer.score(images);
    const d = r.features.length / chunk.length;
    chunk.forEach((p, j) => {
      const probs = Array.from(r.probs.subarray(j * k, (j + 1) * k));
      const ood = r.oodScores ? r.oodScores[j] : null;
      if (ood !== null) scores.push(ood);
      features.push(r.features.slice(j * d, (j + 1) * d));
      tiles.push({
        x: p.x,
        y: p.y,
        probs,
        pred: predictedClass(probs, meta.head),
        expected: probs.reduce((a, v, c) => a + v * c, 0),
        ood,
        oodFlag: ood === null || scorer.tileThreshold === undefined ? null : ood > scorer.tileThreshold,
        attention: null,
      });
    });
    onTiles?.(chunk.length);
  }
  return { tiles, scores, features };
}

/**
 * One slide's heatmap: tissue tiles at the model's tile size and resolution, scored by the model (ONNX
 * Runtime by default), its primary OOD detector and its attention-MIL head where they exist.
 */
export async function heatmapOfSlide(
  s: HeatmapSlide,
  model: HeatmapModel,
  out: string,
  options: { minTissue: number; batch: number; onTiles?: (n: number) => void; onPlanned?: (n: number) => void },
): Promise<SlideHeatmap> {
  const slide = await openSlide(s.path, s.id ? { id: s.id } : {});
  try {
    const { meta } = model;
    const mask = await detectTissue(slide, { maxSide: 1024 });
    const plan = planTiles(slide, mask, { tileSize: meta.tileSize, mpp: meta.mpp, minTissue: options.minTissue, slideMpp: s.mpp });
    options.onPlanned?.(plan.tiles.length);
    const { tiles, scores, features } = await scoreTiles(slide, plan, model, options.batch, options.onTiles);
    if (model.mil && tiles.length) {
      const d = features[0].length;
      const all = new Float32Array(tiles.length * d);
      features.forEach((f, i) => all.set(f, i * d));
      const { attention } = model.mil.predict({ slideId: slide.id, features: all, n: tiles.length });
      tiles.forEach((t, i) => (t.attention = attention[i]));
    }
    const k = meta.classes.length;
    const pooled = meanPool(tiles, k);
    const slideOod = model.scorer.slideOod && scores.length ? model.scorer.slideOod(Float64Array.from(scores)) : undefined;
    const reference = s.grade === undefined ? null : meta.classes.indexOf(s.grade);
    const thumb = await readThumbnail(slide, 1024);
    const { width, height } = slide.levels[0];
    const truth =
      s.maskPath && existsSync(s.maskPath)
        ? await truthAtThumbnail(s.maskPath, thumb.image.width, thumb.image.height, thumb.downsample)
        : undefined;
    return await writeHeatmap(
      join(out, slide.id),
      {
        format: 'gradelab-heatmap/1',
        slide: { id: slide.id, path: s.path, width, height, mpp: slide.mpp ?? null },
        model: { dir: model.dir, task: meta.task, head: meta.head, weightsSha256: meta.weightsSha256 ?? null },
        classes: meta.classes,
        tileSpan: meta.tileSize * plan.downsample,
        tiles,
        slidePrediction: pooled && { ...pooled, oodScore: slideOod?.score ?? null, oodFlag: slideOod?.flag ?? null },
        reference: reference === -1 ? null : reference,
        referralPriority: referralPriority(
          pooled?.pred ?? null,
          reference === -1 ? null : reference,
          slideOod?.flag ?? null,
          pooled?.uncertainty ?? 1,
        ),
      },
      { thumbnail: thumb.image, downsample: thumb.downsample, tissue: mask, truth },
    );
  } finally {
    await slide.close();
  }
}
