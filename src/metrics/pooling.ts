import {
  groupBy,
  patternAreasOf,
  patternGradeProbabilities,
  predictedClass,
  type HeadKind,
  type PatternAreas,
  type PatternGrading,
} from '../core/index.ts';
import type { PredictionRow } from './predictionRow.ts';

/** What pooling reads of a tile (a dataset's TileRow has it all). */
export interface PooledTile {
  slideId: string;
  patientId: string;
  site: string;
  scanner: string;
  grade?: number;
  anomaly: string;
  x: number;
  y: number;
  /** Extra manifest columns; rater_* columns become the slide's rater grades. */
  labels: Record<string, string>;
}

/** Tile-level class probabilities to pool: tiles in order, K classes, probs n x K. */
export interface PooledTiles {
  tiles: readonly PooledTile[];
  k: number;
  probs: Float32Array;
  /** The head that made the probabilities: it decides how a class is predicted from them. */
  head: HeadKind;
  /** A pattern head's rule from areas to grade (the model's `patternGrading`). */
  grading?: PatternGrading;
}

export type SlidePooling = 'mean' | 'topk';

/** How many of a slide's tiles top-k pooling keeps. */
export const TOP_K_TILES = 8;

/** A slide's grade as gradelab states it everywhere: class probabilities, the predicted class, uncertainty. */
export interface SlideGrade {
  probs: number[];
  pred: number;
  /** 1 - the largest class probability. */
  uncertainty: number;
  /** A pattern model's slide: the share of its tissue in each pattern (the areas the grade comes from). */
  patterns?: PatternAreas;
  /** A pattern model's slide: the Gleason score the ISUP rule gives its areas ("3+4", "0+0"). */
  gleason?: string;
}

/**
 * The slide grade from slide-level class probabilities: normalised to sum 1, the class by the head's
 * rule (CORAL counts thresholds, the others take the most probable), uncertainty 1 - max. A pattern
 * head's probabilities are its pattern areas (PATTERN_ISUP): the grade is the ISUP rule's on them, with
 * the model's `grading`, and the probabilities become grade-group probabilities. Pooled tiles, an
 * attention-MIL head and every command that shows a slide's grade go through here.
 */
export function slideGrade(probs: ArrayLike<number>, head: HeadKind, grading?: PatternGrading): SlideGrade {
  const values = Array.from(probs);
  const sum = values.reduce((a, b) => a + b, 0);
  const norm = values.map((v) => v / sum);
  if (head === 'patterns') {
    // Without its rule a pattern model's slide would get some other grade: never silently.
    if (!grading) throw new Error("a pattern head's slides were graded without its patternGrading");
    const patterns = patternAreasOf(norm);
    const { probs: gradeProbs, grade, score } = patternGradeProbabilities(patterns, grading);
    const gleason = `${score.primary}+${score.secondary}`;
    return { probs: gradeProbs, pred: grade, uncertainty: 1 - Math.max(...gradeProbs), patterns, gleason };
  }
  return { probs: norm, pred: predictedClass(norm, head), uncertainty: 1 - Math.max(...norm) };
}

/**
 * One slide's grade from its tiles' class probabilities (`tileProbs(i)` for i < n): the mean over
 * tiles, or the mean of the top-k tiles ranked by expected grade (a tumour focus decides a grade even
 * when most tiles are benign). Null for a slide without tiles: the model has no opinion of it.
 */
export function poolTileProbs(
  n: number,
  k: number,
  tileProbs: (i: number) => ArrayLike<number>,
  head: HeadKind,
  pooling: SlidePooling = 'mean',
  topK = TOP_K_TILES,
  grading?: PatternGrading,
): SlideGrade | null {
  if (n === 0) return null;
  let use = Array.from({ length: n }, (_, i) => i);
  if (pooling === 'topk' && n > topK) {
    const expected = use.map((i) => {
      const p = tileProbs(i);
      let e = 0;
      for (let c = 0; c < k; c++) e += c * p[c];
      return e;
    });
    use = use.sort((a, b) => expected[b] - expected[a]).slice(0, topK);
  }
  const sum = new Array<number>(k).fill(0);
  for (const i of use) {
    const p = tileProbs(i);
    for (let c = 0; c < k; c++) sum[c] += p[c];
  }
  return slideGrade(
    sum.map((v) => v / use.length),
    head,
    grading,
  );
}

/** Class index of a tile's grade: ISUP 0-5 as is, Nottingham 1-3 as 0-2. */
export function classIndex(grade: number | undefined, classes: number[]): number | undefined {
  if (grade === undefined) return undefined;
  const i = classes.indexOf(grade);
  return i < 0 ? undefined : i;
}

/** Slide rows from tile probabilities: each slide's tiles pooled by poolTileProbs. */
export function poolSlides(p: PooledTiles, classes: number[], pooling: SlidePooling = 'mean', topK = TOP_K_TILES): PredictionRow[] {
  const k = p.k;
  const bySlide = groupBy(
    p.tiles,
    (t) => t.slideId,
    (_, i) => i,
  );
  const rows: PredictionRow[] = [];
  for (const [slideId, idx] of bySlide) {
    const grade = poolTileProbs(idx.length, k, (j) => p.probs.subarray(idx[j] * k, (idx[j] + 1) * k), p.head, pooling, topK, p.grading)!;
    const t = p.tiles[idx[0]];
    rows.push({
      slideId,
      patientId: t.patientId,
      site: t.site,
      scanner: t.scanner,
      label: classIndex(t.grade, classes),
      pred: grade.pred,
      probs: grade.probs,
      uncertainty: grade.uncertainty,
      raters: Object.fromEntries(
        Object.entries(t.labels)
          .filter(([c, v]) => c.startsWith('rater_') && v !== '')
          .map(([c, v]) => [c.slice(6), classIndex(Number(v), classes) ?? 0]),
      ),
      extra: { tiles: String(idx.length), anomaly: t.anomaly, ...patternColumns(grade) },
    });
  }
  return rows;
}

/** A pattern model's slide columns: its Gleason score and each pattern's share of the tissue. */
export function patternColumns(grade: SlideGrade): Record<string, string> {
  const a = grade.patterns;
  if (!a) return {};
  return {
    gleason: grade.gleason!,
    pattern_benign: a.benign.toFixed(6),
    pattern_g3: a.g3.toFixed(6),
    pattern_g4: a.g4.toFixed(6),
    pattern_g5: a.g5.toFixed(6),
  };
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
