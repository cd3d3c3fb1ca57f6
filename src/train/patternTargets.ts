import { parseGleasonScore, PATTERN_CLASSES, PATTERN_ISUP } from '../core/index.ts';
import { isCancerTile, tilePattern, type TileRow } from '../data/index.ts';

const P = PATTERN_CLASSES.length;

/**
 * What a pattern head learns from a batch: per tile up to four groups of pattern classes (benign, 3, 4,
 * 5), each with a weight; the loss is -sum_g weight_g * log(sum of the head's probabilities over group
 * g). A tile is a cancer tile when its mask marks at least CANCER_TILE_SHARE of its tissue as cancer; a
 * cancer tile's target is its cancer's patterns, weighted by their shares of the cancer (a soft target
 * where a tile straddles two patterns), and any other masked tile is benign. Stroma is not weighed
 * against the cancer: masks (Radboud's and gradelab's) mark gland epithelium, and the stroma between a
 * tumour's glands would otherwise make most tumour tiles "benign". A mask that says only benign or cancer
 * (Karolinska) makes a cancer tile "one of the slide's patterns"; a tile without a mask learns what its
 * slide's label allows: benign on a benign slide, benign or one of the slide's patterns otherwise (weak
 * supervision, a partial-label loss). A slide's pattern areas are then its share of tiles in each pattern.
 */
export interface PatternTargets {
  n: number;
  /** n x 4 group weights, each row summing to 1. */
  weights: Float32Array;
  /** n x 4 x 4: 1 where class c belongs to group g of tile i. */
  members: Float32Array;
}

/** The Gleason patterns a slide's label allows in its cancer: its score's, or its grade group's possible ones. */
export function allowedPatterns(tile: Pick<TileRow, 'grade' | 'labels'>): number[] {
  const score = parseGleasonScore(tile.labels.gleason_score ?? '');
  if (score && score.primary >= 3) return [...new Set([score.primary, score.secondary])].sort();
  const byGrade: Record<number, number[]> = { 1: [3], 2: [3, 4], 3: [3, 4], 4: [3, 4, 5], 5: [4, 5] };
  return byGrade[tile.grade ?? -1] ?? [3, 4, 5];
}

/** Which supervision a tile gets: its mask's patterns, its mask's benign/cancer, or its slide's label. */
export function supervisionOf(tile: TileRow): 'patterns' | 'cancer' | 'label' {
  const tissue = (tile.maskBenign ?? 0) + (tile.maskCancer ?? 0);
  if (tile.maskBenign === undefined || tissue <= 0) return 'label';
  return tile.maskG3 === undefined ? 'cancer' : 'patterns';
}

export function patternTargets(tiles: readonly TileRow[]): PatternTargets {
  const n = tiles.length;
  const weights = new Float32Array(n * P);
  const members = new Float32Array(n * P * P);
  const group = (i: number, g: number, weight: number, classes: number[]) => {
    weights[i * P + g] = weight;
    for (const c of classes) members[(i * P + g) * P + c] = 1;
  };
  tiles.forEach((tile, i) => {
    const cancerClasses = allowedPatterns(tile).map((p) => p - 2);
    const kind = supervisionOf(tile);
    if (kind !== 'label' && !isCancerTile(tile)) {
      group(i, 0, 1, [0]);
    } else if (kind === 'patterns') {
      const shares = [tile.maskG3!, tile.maskG4!, tile.maskG5!];
      const cancer = shares.reduce((a, b) => a + b, 0);
      shares.forEach((s, c) => group(i, c + 1, s / cancer, [c + 1]));
    } else if (kind === 'cancer') {
      group(i, 0, 1, cancerClasses);
    } else {
      group(i, 0, 1, tile.grade === 0 ? [0] : [0, ...cancerClasses]);
    }
  });
  return { n, weights, members };
}

/** A masked tile's pattern as an ISUP class (PATTERN_ISUP); undefined without a pattern mask. */
export function tilePatternClass(tile: TileRow): number | undefined {
  const p = tilePattern(tile);
  return p === undefined ? undefined : PATTERN_ISUP[p];
}

/** Rows `start` to `end` of a batch's targets (a replica's shard). */
export function sliceTargets(t: PatternTargets, start: number, end: number): PatternTargets {
  return {
    n: end - start,
    weights: t.weights.slice(start * P, end * P),
    members: t.members.slice(start * P * P, end * P * P),
  };
}
