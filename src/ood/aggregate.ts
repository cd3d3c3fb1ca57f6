import { groupBy, quantile } from '../core/index.ts';

/** Tile-to-slide aggregation of OOD scores: anomalies are often a small region of a slide. */
export type Aggregation = 'mean' | 'topk' | 'fraction';

export function aggregateScores(
  scores: ArrayLike<number>,
  groups: readonly string[],
  how: Aggregation = 'topk',
  options: { k?: number; threshold?: number } = {},
): Map<string, number> {
  const by = groupBy(
    groups,
    (g) => g,
    (_, i) => scores[i],
  );
  const out = new Map<string, number>();
  for (const [g, v] of by) {
    if (how === 'mean') out.set(g, v.reduce((a, b) => a + b, 0) / v.length);
    else if (how === 'fraction') out.set(g, v.filter((s) => s > (options.threshold ?? Infinity)).length / v.length);
    else {
      const top = v
        .slice()
        .sort((a, b) => b - a)
        .slice(0, Math.max(1, options.k ?? 5));
      out.set(g, top.reduce((a, b) => a + b, 0) / top.length);
    }
  }
  return out;
}

/** The threshold accepting `accept` of in-distribution scores (flag above it). */
export function calibrateThreshold(idScores: ArrayLike<number>, accept = 0.95): number {
  return idScores.length ? quantile(idScores, accept) : Infinity;
}
