import { describe, expect, it } from 'vitest';
import { cohenKappa } from '../../src/metrics/index.ts';
import { precisionReport } from '../../src/eval/index.ts';

describe('precision of slide grades', () => {
  // Four slides (four patients), three acquisitions each.
  const slides = [
    { slideId: 's1', patientId: 'p1', grades: [2, 2, 2] },
    { slideId: 's2', patientId: 'p2', grades: [1, 2, 1] },
    { slideId: 's3', patientId: 'p3', grades: [0, 0, 0] },
    { slideId: 's4', patientId: 'p4', grades: [3, 1, 3] },
  ];
  const r = precisionReport(slides, ['a', 'b', 'c'], { kind: 'repeatability', task: 'prostate', k: 6, resamples: 200, seed: 1 });

  it('share identical, mean absolute difference and flips across the ISUP cut-offs, by hand', () => {
    expect(r.identical.value).toBe(0.5);
    // Pairs a-b: |0|, |1|, 0, |2| -> 3/4; a-c: 0; b-c: 3/4. Mean 0.5.
    expect(r.meanAbsoluteDifference.value).toBeCloseTo(0.5, 12);
    // >= 1: no slide crosses; >= 2: s2 and s4; >= 3: s4.
    expect(r.flips.map((f) => [f.cutoff, f.rate.value])).toEqual([
      ['cancer (ISUP >= 1)', 0],
      ['ISUP >= 2', 0.5],
      ['ISUP >= 3', 0.25],
    ]);
  });

  it("Fleiss' kappa by hand: P_bar = 2/3, P_e = 38/144, kappa = 29/53", () => {
    expect(r.fleiss.value).toBeCloseTo(29 / 53, 12);
  });

  it('pairwise kappas: identical acquisitions agree fully, the rest are quadratic kappas', () => {
    expect(r.pairs.map((p) => [p.a, p.b, p.identical])).toEqual([
      ['a', 'b', 0.5],
      ['a', 'c', 1],
      ['b', 'c', 0.5],
    ]);
    expect(r.pairs[1].kappa).toBe(1);
    const ab = cohenKappa([2, 1, 0, 3], [2, 2, 0, 1], 6, 'quadratic');
    expect(r.pairs[0].kappa).toBeCloseTo(ab, 12);
    expect(r.pairwiseKappa.value).toBeCloseTo((ab + 1 + ab) / 3, 12);
  });

  it('acquisitions that never disagree give agreement exactly 1 and no flips', () => {
    const same = slides.map((s) => ({ ...s, grades: [s.grades[0], s.grades[0], s.grades[0]] }));
    const z = precisionReport(same, ['a', 'b', 'c'], { kind: 'repeatability', task: 'prostate', k: 6, resamples: 200, seed: 1 });
    expect([z.identical.value, z.fleiss.value, z.pairwiseKappa.value, z.meanAbsoluteDifference.value]).toEqual([1, 1, 1, 0]);
    expect(z.flips.every((f) => f.rate.value === 0)).toBe(true);
  });
});
