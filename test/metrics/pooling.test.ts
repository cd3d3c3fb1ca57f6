import { describe, expect, it } from 'vitest';
import { poolSlides, poolTileProbs, slideGrade } from '../../src/metrics/index.ts';
import type { TileRow } from '../../src/data/index.ts';

const tile = (slideId: string, grade = 2): TileRow =>
  ({ slideId, patientId: `p-${slideId}`, site: 's', scanner: 'x', grade, labels: {}, anomaly: '' }) as unknown as TileRow;

describe('one slide grade from tile probabilities', () => {
  it('mean pooling: the tile mean, its most probable class, 1 - max as uncertainty (by hand)', () => {
    const tiles = [
      [0.7, 0.2, 0.1],
      [0.1, 0.6, 0.3],
      [0.1, 0.5, 0.4],
    ];
    const g = poolTileProbs(3, 3, (i) => tiles[i], 'softmax')!;
    // Means: 0.9/3, 1.3/3, 0.8/3.
    expect(g.probs[0]).toBeCloseTo(0.3, 12);
    expect(g.probs[1]).toBeCloseTo(1.3 / 3, 12);
    expect(g.probs[2]).toBeCloseTo(0.8 / 3, 12);
    expect(g.pred).toBe(1);
    expect(g.uncertainty).toBeCloseTo(1 - 1.3 / 3, 12);
  });

  it('top-k keeps the k tiles of highest expected grade', () => {
    // Expected grades 0.2, 1.8, 1.0, 0.1: top 2 are tiles 1 and 2.
    const tiles = [
      [0.8, 0.2, 0],
      [0, 0.2, 0.8],
      [0.2, 0.6, 0.2],
      [0.9, 0.1, 0],
    ];
    const g = poolTileProbs(4, 3, (i) => tiles[i], 'softmax', 'topk', 2)!;
    expect(g.probs.map((v) => Number(v.toFixed(10)))).toEqual([0.1, 0.4, 0.5]);
    expect(g.pred).toBe(2);
    // Mean pooling of the same tiles says grade 0 (0.475 of the mass): the pooling is the decision.
    expect(poolTileProbs(4, 3, (i) => tiles[i], 'softmax')!.pred).toBe(0);
  });

  it('an ordinal head counts thresholds passed, where the argmax of the pooled probabilities would not', () => {
    // P(y > 0) = 0.6, P(y > 1) = 0.4: CORAL says 1; the argmax of (0.4, 0.2, 0.4) is 0.
    const g = slideGrade([0.4, 0.2, 0.4], 'ordinal');
    expect(g.pred).toBe(1);
    expect(slideGrade([0.4, 0.2, 0.4], 'softmax').pred).toBe(0);
  });

  it('a slide without tiles has no grade', () => {
    expect(poolTileProbs(0, 6, () => [], 'softmax')).toBeNull();
  });

  it('poolSlides gives each slide of a table the grade poolTileProbs gives its tiles', () => {
    const tiles = [tile('a'), tile('b'), tile('a'), tile('b')];
    const probs = Float32Array.from([0.6, 0.4, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7]);
    const rows = poolSlides({ tiles, k: 2, probs, head: 'softmax' }, [0, 1]);
    expect(rows.map((r) => [r.slideId, r.pred])).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    expect(rows[0].probs[0]).toBeCloseTo(0.4, 6);
    expect(rows[1].probs[1]).toBeCloseTo(0.8, 6);
  });
});

describe("a pattern model's slide grade", () => {
  const grading = { rule: { minCancerShare: 0.2, minPatternShare: 0.01, lowerSecondaryShare: 0.05 }, softness: 0.5 };
  // Tiles' pattern probabilities in their ISUP classes: two benign tiles, one pattern 3, one pattern 4.
  const tiles = [
    [1, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0],
  ];

  it("comes from the mean areas by the model's rule: half the tissue cancer, 3 and 4 equal: 4+3", () => {
    const g = poolTileProbs(4, 6, (i) => tiles[i], 'patterns', 'mean', undefined, grading)!;
    expect(g.patterns).toEqual({ benign: 0.5, g3: 0.25, g4: 0.25, g5: 0 });
    expect(g.gleason).toBe('4+3');
    expect(g.pred).toBe(3);
    expect(g.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(g.uncertainty).toBeCloseTo(1 - Math.max(...g.probs), 12);
  });

  it('a higher cancer floor makes the same tiles benign', () => {
    const strict = { ...grading, rule: { ...grading.rule, minCancerShare: 0.6 } };
    expect(poolTileProbs(4, 6, (i) => tiles[i], 'patterns', 'mean', undefined, strict)!.pred).toBe(0);
  });

  it('is refused without the rule (it would be some other grade), and the slide rows carry the areas', () => {
    expect(() => slideGrade(tiles[0], 'patterns')).toThrow(/patternGrading/);
    const rows = poolSlides(
      { tiles: [tile('a'), tile('a'), tile('a'), tile('a')], k: 6, probs: Float32Array.from(tiles.flat()), head: 'patterns', grading },
      [0, 1, 2, 3, 4, 5],
    );
    expect(rows[0].extra).toMatchObject({
      gleason: '4+3',
      pattern_benign: '0.500000',
      pattern_g3: '0.250000',
      pattern_g4: '0.250000',
      pattern_g5: '0.000000',
    });
  });
});
