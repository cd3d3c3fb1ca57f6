import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import { auprTrapezoid, auroc, fprAtTpr, RankedScores } from '../../src/eval/index.ts';

describe('ranked scores (one sort, any resample)', () => {
  it('AUROC, FPR at 95% TPR and AUPR of any multiset of rows equal the sorting functions on the resampled arrays, ties included', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rng = createRng(seed);
      const n = 40 + rng.int(60);
      // One decimal: many ties, within and across classes.
      const labels = Int32Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
      const scores = Float64Array.from(labels, (l) => Math.round((rng.normal() + l) * 10) / 10);
      const ranked = new RankedScores(labels, scores);
      for (let r = 0; r < 30; r++) {
        const m = r === 0 ? n : 1 + rng.int(2 * n);
        const rows = Int32Array.from({ length: m }, (_, i) => (r === 0 ? i : rng.int(n)));
        const y = Int32Array.from(rows, (i) => labels[i]);
        const s = Float64Array.from(rows, (i) => scores[i]);
        const w = ranked.counts(rows);
        expect(ranked.auroc(w)).toBe(auroc(y, s));
        expect(ranked.fprAtTpr(w)).toBe(fprAtTpr(y, s));
        expect(ranked.auprTrapezoid(w)).toBe(auprTrapezoid(y, s));
      }
    }
  });

  it('a resample with one class has no AUROC or AUPR, as the sorting functions say', () => {
    const ranked = new RankedScores(Int32Array.from([0, 0, 1, 1]), Float64Array.from([0.1, 0.2, 0.3, 0.4]));
    const negatives = ranked.counts([0, 1, 1]);
    expect(ranked.auroc(negatives)).toBeNaN();
    expect(ranked.auprTrapezoid(negatives)).toBeNaN();
    expect(ranked.auroc(ranked.counts([0, 1, 2, 3]))).toBe(1);
  });
});
