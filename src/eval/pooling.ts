import { groupBy, predictedClass, type HeadKind } from '../core/index.ts';
import type { TileRow } from '../data/index.ts';
import type { PredictionRow } from './predictions.ts';

/** Tile-level class probabilities to pool: tiles in order, K classes, probs n x K. */
export interface PooledTiles {
  tiles: readonly TileRow[];
  k: number;
  probs: Float32Array;
  /** The head that made the probabilities: it decides how a class is predicted from them. */
  head: HeadKind;
}

export type SlidePooling = 'mean' | 'topk';

/** Class index of a tile's grade: ISUP 0-5 as is, Nottingham 1-3 as 0-2. */
export function classIndex(grade: number | undefined, classes: number[]): number | undefined {
  if (grade === undefined) return undefined;
  const i = classes.indexOf(grade);
  return i < 0 ? undefined : i;
}

/**
 * Tile-to-slide pooling of class probabilities: the mean over tiles, or the mean of the top-k tiles
 * ranked by their expected grade (a tumour focus decides a grade even when most tiles are benign).
 */
export function poolSlides(p: PooledTiles, classes: number[], pooling: SlidePooling = 'mean', topK = 8): PredictionRow[] {
  const k = p.k;
  const bySlide = groupBy(
    p.tiles,
    (t) => t.slideId,
    (_, i) => i,
  );
  const rows: PredictionRow[] = [];
  for (const [slideId, idx] of bySlide) {
    let use = idx;
    if (pooling === 'topk' && idx.length > topK) {
      const expected = (i: number) => Array.from({ length: k }, (_, c) => c * p.probs[i * k + c]).reduce((a, b) => a + b, 0);
      use = idx
        .slice()
        .sort((a, b) => expected(b) - expected(a))
        .slice(0, topK);
    }
    const probs = Array.from({ length: k }, (_, c) => use.reduce((s, i) => s + p.probs[i * k + c], 0) / use.length);
    const sum = probs.reduce((a, b) => a + b, 0);
    const norm = probs.map((v) => v / sum);
    const t = p.tiles[idx[0]];
    rows.push({
      slideId,
      patientId: t.patientId,
      site: t.site,
      scanner: t.scanner,
      label: classIndex(t.grade, classes),
      pred: predictedClass(norm, p.head),
      probs: norm,
      uncertainty: 1 - Math.max(...norm),
      raters: Object.fromEntries(
        Object.entries(t.labels)
          .filter(([c, v]) => c.startsWith('rater_') && v !== '')
          .map(([c, v]) => [c.slice(6), classIndex(Number(v), classes) ?? 0]),
      ),
      extra: { tiles: String(idx.length), anomaly: t.anomaly },
    });
  }
  return rows;
}

/** Tile-level rows in the predictions format. */
export function tileRows(p: PooledTiles, classes: number[]): PredictionRow[] {
  const k = p.k;
  return p.tiles.map((t, i) => {
    const probs = Array.from(p.probs.subarray(i * k, (i + 1) * k));
    return {
      slideId: t.slideId,
      patientId: t.patientId,
      site: t.site,
      scanner: t.scanner,
      label: classIndex(t.grade, classes),
      pred: predictedClass(probs, p.head),
      probs,
      uncertainty: 1 - Math.max(...probs),
      raters: {},
      extra: { x: String(t.x), y: String(t.y), anomaly: t.anomaly },
    };
  });
}
