import { describe, expect, it } from 'vitest';
import { aurc, oracleAurc, riskCoverage, selectivePrediction, UNCERTAINTY_SCORES } from '../../src/eval/index.ts';

describe('selective prediction', () => {
  it('AURC and the oracle by hand', () => {
    // From most to least certain the errors are 0, 1, 0, 1: risks 0, 1/2, 1/3, 2/4 at coverage 1/4 .. 4/4.
    const errors = [1, 0, 1, 0];
    const uncertainty = [0.2, 0.1, 0.4, 0.3];
    expect(aurc(errors, uncertainty)).toBeCloseTo((0 + 1 / 2 + 1 / 3 + 2 / 4) / 4, 12);
    // Errors deferred first: risks 0, 0, 1/3, 2/4.
    expect(oracleAurc(errors)).toBeCloseTo((1 / 3 + 2 / 4) / 4, 12);
    // The worst ordering puts the errors first.
    expect(aurc(errors, [0.1, 0.3, 0.2, 0.4])).toBeCloseTo((1 + 1 + 2 / 3 + 2 / 4) / 4, 12);
  });

  it("the oracle's AURC tends to Geifman's closed form r + (1 - r) ln(1 - r)", () => {
    const n = 20000;
    const r = 0.3;
    const errors = Array.from({ length: n }, (_, i) => (i % 10 < 3 ? 1 : 0));
    expect(Math.abs(oracleAurc(errors) - (r + (1 - r) * Math.log(1 - r)))).toBeLessThan(1e-3);
  });

  it('uncertainty scores by hand', () => {
    expect(UNCERTAINTY_SCORES['max-probability']([0.7, 0.2, 0.1])).toBeCloseTo(0.3, 12);
    expect(UNCERTAINTY_SCORES.entropy([0.5, 0.5, 0])).toBeCloseTo(Math.log(2), 12);
    // Grades 0 and 2 at half each: mean 1, variance 1.
    expect(UNCERTAINTY_SCORES['expected-grade-variance']([0.5, 0, 0.5])).toBeCloseTo(1, 12);
  });

  it('reports every score with an interval, the OOD score where present, and the coverage that reaches a target QWK', () => {
    // 40 patients: the wrong cases are the uncertain ones, so deferring them reaches any QWK target.
    const rows = Array.from({ length: 40 }, (_, i) => {
      const wrong = i % 4 === 0;
      const y = i % 3;
      return {
        y,
        pred: wrong ? (y + 1) % 3 : y,
        probs: wrong ? [0.4, 0.3, 0.3] : [0.9, 0.05, 0.05],
        patientId: `p${i}`,
        oodScore: wrong ? 2 : 1,
      };
    });
    const u = rows.map((r) => 1 - Math.max(...r.probs));
    const { curve } = riskCoverage(
      rows.map((r) => r.y),
      rows.map((r) => r.pred),
      u,
      3,
    );
    const s = selectivePrediction(rows, curve, { resamples: 200, seed: 1 });
    expect(s.scores.map((x) => x.score)).toEqual(['max-probability', 'entropy', 'expected-grade-variance', 'ood-score']);
    expect(s.risk).toBe(0.25);
    // Max probability and the OOD score both defer exactly the errors first: no excess over the oracle.
    for (const name of ['max-probability', 'ood-score']) expect(s.scores.find((x) => x.score === name)!.eaurc.value).toBeCloseTo(0, 12);
    // Each target is met at the largest coverage whose kept cases reach it; with every error deferred (75%) QWK is 1.
    for (const { target, coverage } of s.coverageAtQwk) {
      expect(coverage, `QWK ${target}`).toBeGreaterThanOrEqual(0.75);
      expect(curve.find((p) => p.coverage === coverage)!.qwk).toBeGreaterThanOrEqual(target);
      for (const p of curve.filter((q) => q.coverage > coverage!)) expect(p.qwk, `QWK ${target} at ${p.coverage}`).toBeLessThan(target);
    }
    expect(s.coverageAtQwk.map((c) => c.coverage)).toEqual([0.85, 0.8, 0.8]);
    // Sensitivity at a cut-off of 2: 13 cases of class 2, three of them (i = 8, 20, 32) graded 0.
    const withCut = riskCoverage(
      rows.map((r) => r.y),
      rows.map((r) => r.pred),
      u,
      3,
      0.05,
      0.1,
      2,
    ).curve;
    expect(withCut[0].sensitivity).toBeCloseTo(10 / 13, 12);
    expect(withCut.find((p) => p.coverage === 0.75)!.sensitivity).toBe(1);
    const sens = selectivePrediction(rows, withCut, { resamples: 200, seed: 1, cutoff: 'class >= 2' }).coverageAtSensitivity!;
    for (const { target, coverage } of sens) {
      expect(withCut.find((p) => p.coverage === coverage)!.sensitivity).toBeGreaterThanOrEqual(target);
      for (const p of withCut.filter((q) => q.coverage > coverage!)) expect(p.sensitivity).toBeLessThan(target);
    }
  });
});
