import { describe, expect, it } from 'vitest';
import { patternAgreement, patternAgreementMarkdown, type PatternTile } from '../../src/eval/index.ts';

// Two slides of two patients; masks say benign, benign, 3, 4 and 5, 5; the model's most probable
// patterns are benign, 3, 3, 4 and 5, 4.
const tiles: PatternTile[] = [
  { slideId: 'a', patientId: 'p1', truth: 0, probs: [0.9, 0.1, 0, 0] },
  { slideId: 'a', patientId: 'p1', truth: 0, probs: [0.2, 0.7, 0.1, 0] },
  { slideId: 'a', patientId: 'p1', truth: 1, probs: [0.1, 0.8, 0.1, 0] },
  { slideId: 'a', patientId: 'p1', truth: 2, probs: [0, 0.3, 0.6, 0.1] },
  { slideId: 'b', patientId: 'p2', truth: 3, probs: [0, 0, 0.2, 0.8] },
  { slideId: 'b', patientId: 'p2', truth: 3, probs: [0, 0, 0.6, 0.4] },
];

describe('pattern agreement with the masks', () => {
  const a = patternAgreement(tiles, { resamples: 200, seed: 1 });

  it('counts by hand: accuracy 4/6, Dice 2/3 for every pattern, sensitivities 1/2, 1, 1, 1/2', () => {
    expect([a.tiles, a.slides, a.patients]).toEqual([6, 2, 2]);
    expect(a.accuracy.value).toBeCloseTo(4 / 6, 12);
    expect(a.classes.map((c) => c.support)).toEqual([2, 1, 1, 2]);
    expect(a.classes.map((c) => c.dice.value)).toEqual([2 / 3, 2 / 3, 2 / 3, 2 / 3]);
    expect(a.classes.map((c) => c.sensitivity.value)).toEqual([0.5, 1, 1, 0.5]);
    expect(a.confusion).toEqual([
      [1, 1, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 1, 1],
    ]);
  });

  it('kappa as scikit-learn gives it (quadratic weights over benign < 3 < 4 < 5)', () => {
    // sklearn.metrics.cohen_kappa_score([0,0,1,2,3,3], [0,1,1,2,3,2], weights='quadratic')
    expect(a.kappa.value).toBeCloseTo(0.8666666666666667, 12);
  });

  it("slide area error: the mean over slides of |the tiles' mean probability - the masks' share|", () => {
    // Benign: slide a 1.2 of 4 tiles against 2 of 4 (0.2), slide b 0 against 0; pattern 5: 0.1/4 and 0.8/2.
    expect(a.classes[0].areaError.value).toBeCloseTo(0.1, 12);
    expect(a.classes[3].areaError.value).toBeCloseTo((0.025 + 0.4) / 2, 12);
    expect(patternAgreementMarkdown(a, 'held-out')).toContain('| Gleason 5 | 2 | 0.500');
  });
});
