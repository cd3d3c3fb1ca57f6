import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openSlide, type SlideSource } from '../../src/data/index.ts';
import { writeHeatmap, type HeatmapTile, type SlideHeatmap } from '../../src/view/index.ts';
import { writeSharpPyramid } from '../data/fixtures.ts';
import { createRng, type RgbImage } from '../../src/core/index.ts';

/** Seeded noise: any misplaced, mis-scaled or resampled pixel shows (a smooth image would hide it). */
function noiseImage(width: number, height: number): RgbImage {
  const rng = createRng('viewer-noise');
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => 40 + rng.int(200)) };
}

/**
 * A small pyramidal slide (1000 x 700 of seeded noise, lossless) and a heatmap over it with known tiles: a
 * 3 x 2 grid of 200-pixel tiles, grades 0..5 in reading order, the last one OOD-flagged.
 */
export async function slideWithHeatmap(
  dir: string,
  id = 'view-slide',
): Promise<{ slide: SlideSource; heatmap: SlideHeatmap; heatmapDir: string; path: string }> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'view-slide.tiff');
  await writeSharpPyramid(path, noiseImage(1000, 700), { mpp: 0.5, compression: 'deflate' });
  const slide = await openSlide(path, { id });
  const tiles: HeatmapTile[] = [];
  for (let c = 0; c < 6; c++) {
    const probs = Array.from({ length: 6 }, (_, j) => (j === c ? 0.75 : 0.05));
    tiles.push({
      x: 100 + (c % 3) * 200,
      y: 100 + Math.floor(c / 3) * 200,
      probs,
      pred: c,
      expected: probs.reduce((a, p, j) => a + p * j, 0),
      ood: c / 10,
      oodFlag: c === 5,
      attention: (c + 1) / 21,
    });
  }
  const thumb = await slide.readRegion(2, 0, 0, 250, 175);
  const heatmapDir = join(dir, 'heatmaps', 'view-slide');
  const heatmap = await writeHeatmap(
    heatmapDir,
    {
      format: 'gradelab-heatmap/1',
      slide: { id: slide.id, path, width: 1000, height: 700, mpp: 0.5 },
      model: { dir: 'm', task: 'prostate', head: 'softmax', weightsSha256: null },
      classes: [0, 1, 2, 3, 4, 5],
      tileSpan: 200,
      tiles,
      slidePrediction: { pred: 3, probs: [0.1, 0.1, 0.1, 0.4, 0.2, 0.1], uncertainty: 0.6, oodScore: 0.4, oodFlag: true },
      reference: 1,
      referralPriority: 25.6,
    },
    { thumbnail: thumb, downsample: 4 },
  );
  return { slide, heatmap, heatmapDir, path };
}
