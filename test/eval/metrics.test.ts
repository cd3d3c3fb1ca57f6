import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  auroc,
  averagePrecision,
  balancedAccuracy,
  bootstrapByPatient,
  brierScore,
  calibration,
  cohenKappa,
  confusionMatrix,
  fleissKappa,
  perClassStats,
  quadraticWeightedKappa,
  raterAgreement,
  riskCoverage,
} from '../../src/eval/index.ts';
import { createRng } from '../../src/core/index.ts';

describe('kappa oracles worked by hand', () => {
  it('a 3x3 QWK checkable on paper', () => {
    // Confusion [[2,1,0],[0,2,1],[0,0,2]]: n = 8, weights (i-j)^2/4.
    // Observed weighted disagreement: 2 cases off by one: 2 x 0.25 = 0.5.
    // Row sums 3,3,2; column sums 2,3,3; expected = sum w_ij r_i c_j / n
    //   = (1/8)[0.25(3*3 + 3*2 + 3*3 + 2*3) + 1(3*3 + 2*2)] = (1/8)(7.5 + 13) = 2.5625.
    // QWK = 1 - 0.5 / 2.5625 = 0.80488...
    const y = [0, 0, 0, 1, 1, 1, 2, 2];
    const p = [0, 0, 1, 1, 1, 2, 2, 2];
    expect(confusionMatrix(y, p, 3)).toEqual([
      [2, 1, 0],
      [0, 2, 1],
      [0, 0, 2],
    ]);
    expect(quadraticWeightedKappa(y, p, 3)).toBeCloseTo(1 - 0.5 / 2.5625, 12);
  });

  it('perfect agreement is 1, chance agreement is 0, full reversal is -1 (QWK)', () => {
    expect(quadraticWeightedKappa([0, 1, 2, 3], [0, 1, 2, 3], 4)).toBe(1);
    // Independent marginals: every true class meets every predicted class equally.
    const y = [0, 0, 1, 1];
    const p = [0, 1, 0, 1];
    expect(cohenKappa(y, p, 2)).toBeCloseTo(0, 12);
    expect(quadraticWeightedKappa(y, p, 2)).toBeCloseTo(0, 12);
    expect(quadraticWeightedKappa([0, 1], [1, 0], 2)).toBeCloseTo(-1, 12);
  });

  it('all one class: 1 when both agree, 0 (no better than chance) when they differ; a class never predicted still counts', () => {
    expect(cohenKappa([2, 2, 2], [2, 2, 2], 3)).toBe(1);
    expect(cohenKappa([2, 2, 2], [1, 1, 1], 3, 'quadratic')).toBe(0);
    const y = [0, 1, 2, 2];
    const p = [0, 1, 1, 1];
    expect(perClassStats(y, p, 3)[2].sensitivity).toBe(0);
    expect(perClassStats(y, p, 3)[2].ppv).toBeNaN();
    expect(balancedAccuracy(y, p, 3)).toBeCloseTo((1 + 1 + 0) / 3, 12);
  });
});

describe('against scikit-learn (fixtures computed with Debian python3-sklearn)', () => {
  const fx = JSON.parse(readFileSync(new URL('../fixtures/sklearn-metrics.json', import.meta.url), 'utf8')) as { cases: any[] };
  const cases: { i: number; c: any }[] = fx.cases.map((c, i) => ({ i, c }));
  it.each(cases)('case $i', ({ c }) => {
    expect(cohenKappa(c.y, c.pred, c.k)).toBeCloseTo(c.kappa, 12);
    expect(cohenKappa(c.y, c.pred, c.k, 'linear')).toBeCloseTo(c.kappa_linear, 12);
    expect(quadraticWeightedKappa(c.y, c.pred, c.k)).toBeCloseTo(c.qwk, 12);
    expect(accuracy(c.y, c.pred)).toBeCloseTo(c.accuracy, 12);
    expect(balancedAccuracy(c.y, c.pred, c.k)).toBeCloseTo(c.balanced_accuracy, 12);
    expect(auroc(c.binary, c.score)).toBeCloseTo(c.auroc, 12);
    expect(averagePrecision(c.binary, c.score)).toBeCloseTo(c.ap, 12);
    expect(confusionMatrix(c.y, c.pred, c.k)).toEqual(c.confusion);
  });
});

describe('probabilistic metrics', () => {
  it('Brier score and ECE on hand-made cases', () => {
    // Two cases, 2 classes: ([0.8,0.2], label 0) -> 0.04+0.04; ([0.4,0.6], label 0) -> 0.36+0.36.
    expect(brierScore([0, 0], Float64Array.from([0.8, 0.2, 0.4, 0.6]), 2)).toBeCloseTo(0.4, 12);
    // Confidence 0.8 right, 0.6 wrong: bins of width 0.1 -> |1-0.8|/2 + |0-0.6|/2 = 0.4.
    expect(calibration([0, 0], Float64Array.from([0.8, 0.2, 0.4, 0.6]), 2, 10).ece).toBeCloseTo(0.4, 12);
    const perfect = calibration([0, 1], Float64Array.from([1, 0, 0, 1]), 2).ece;
    expect(perfect).toBe(0);
  });
});

describe('agreement', () => {
  it("Fleiss' kappa matches the textbook example (Fleiss 1971 via Wikipedia: 0.210)", () => {
    const table = [
      [0, 0, 0, 0, 14],
      [0, 2, 6, 4, 2],
      [0, 0, 3, 5, 6],
      [0, 3, 9, 2, 0],
      [2, 2, 8, 1, 1],
      [7, 7, 0, 0, 0],
      [3, 2, 6, 3, 0],
      [2, 5, 3, 2, 2],
      [6, 5, 2, 1, 0],
      [0, 2, 2, 3, 7],
    ];
    expect(fleissKappa(table)).toBeCloseTo(0.21, 3);
  });

  it('pairwise kappas among raters and the panel bar', () => {
    const raters = [
      { a: 0, b: 0 },
      { a: 1, b: 1 },
      { a: 2, b: 1 },
      { a: 2, b: 2 },
    ];
    const r = raterAgreement(raters, 3)!;
    expect(r.raters).toEqual(['a', 'b']);
    expect(r.pairwise[0].qwk).toBeCloseTo(quadraticWeightedKappa([0, 1, 2, 2], [0, 1, 1, 2], 3), 12);
    expect(r.cases).toBe(4);
  });
});

describe('referral', () => {
  it('deferring the uncertain cases raises accuracy on the rest when uncertainty is informative', () => {
    const y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];
    const pred = [0, 1, 2, 0, 1, 2, 2, 0, 0, 1];
    const u = [0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.9, 0.8, 0.95, 0.7];
    const { curve, aurc } = riskCoverage(y, pred, u, 3, 0.1, 0.6);
    expect(curve[0]).toMatchObject({ coverage: 1, kept: 10, accuracy: 0.6 });
    expect(curve.find((p) => p.coverage === 0.6)!.accuracy).toBe(1);
    expect(aurc).toBeGreaterThan(0);
  });
});

describe('patient bootstrap', () => {
  it('is seeded and covers the truth about 95% of the time on a simulated case', () => {
    // Each patient: 3 correlated slides that are all right (p = 0.7) or all wrong. True accuracy 0.7.
    let covered = 0;
    let width = 0;
    const trials = 120;
    for (let t = 0; t < trials; t++) {
      const rng = createRng(`cov-${t}`);
      const patients: string[] = [];
      const correct: number[] = [];
      for (let p = 0; p < 60; p++) {
        const ok = rng.next() < 0.7 ? 1 : 0;
        for (let s = 0; s < 3; s++) {
          patients.push(`p${p}`);
          correct.push(ok);
        }
      }
      const est = bootstrapByPatient(patients, (idx) => idx.reduce((a, i) => a + correct[i], 0) / idx.length, { resamples: 300, seed: t });
      if (est.ci95[0] <= 0.7 && 0.7 <= est.ci95[1]) covered++;
      width += (est.ci95[1] - est.ci95[0]) / trials;
    }
    // Nominal 95%: 120 trials put the observed share within about 0.88-0.99; an interval that always
    // covers (too wide) fails the upper bound, and its width must match the binomial one,
    // 2 x 1.96 x sqrt(0.7 x 0.3 / 60 patients) = 0.232.
    expect(covered / trials).toBeGreaterThan(0.88);
    expect(covered / trials).toBeLessThan(0.995);
    expect(width).toBeGreaterThan(0.2);
    expect(width).toBeLessThan(0.26);
    const a = bootstrapByPatient(['a', 'b', 'c'], (idx) => idx.length, { resamples: 50, seed: 4 });
    const b = bootstrapByPatient(['a', 'b', 'c'], (idx) => idx.length, { resamples: 50, seed: 4 });
    expect(a).toEqual(b);
  });

  it('tile-level resampling would be too narrow: patients give the wider, honest interval', () => {
    const patients: string[] = [];
    const correct: number[] = [];
    const rng = createRng('width');
    for (let p = 0; p < 40; p++) {
      const ok = rng.next() < 0.7 ? 1 : 0;
      for (let s = 0; s < 10; s++) {
        patients.push(`p${p}`);
        correct.push(ok);
      }
    }
    const stat = (idx: Int32Array) => idx.reduce((a, i) => a + correct[i], 0) / idx.length;
    const byPatient = bootstrapByPatient(patients, stat, { resamples: 400, seed: 1 });
    const byTile = bootstrapByPatient(
      patients.map((_, i) => `t${i}`),
      stat,
      { resamples: 400, seed: 1 },
    );
    expect(byPatient.ci95[1] - byPatient.ci95[0]).toBeGreaterThan(2 * (byTile.ci95[1] - byTile.ci95[0]));
  });
});
