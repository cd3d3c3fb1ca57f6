import { describe, expect, it } from 'vitest';
import { normalCdf, normalQuantile } from '../../src/core/index.ts';
import {
  aucEstimate,
  auroc,
  bcaInterval,
  bootstrapByPatient,
  newcombeAucInterval,
  proportionEstimate,
  wilsonInterval,
} from '../../src/eval/index.ts';

describe('intervals that hold at 0 and 1', () => {
  it("Wilson's score interval: 20 of 20 is 0.839-1.000, 15 of 50 is 0.191-0.438 (by hand: n/(n+z^2) for all successes)", () => {
    const [lo, hi] = wilsonInterval(1, 20);
    expect(lo).toBeCloseTo(20 / (20 + 1.959963984540054 ** 2), 12);
    expect(lo).toBeCloseTo(0.838875, 6);
    expect(hi).toBe(1);
    const [a, b] = wilsonInterval(0.3, 50);
    expect(a).toBeCloseTo(0.191036, 6);
    expect(b).toBeCloseTo(0.437504, 6);
  });

  it("Newcombe's score interval for an AUC matches an independent root-finder on the same published variance (AUCCI's V.NC)", () => {
    // Reference: scipy brentq on Newcombe (2006) method 5, as AUCCI (R) writes V.NC and NC.equation.
    const cases: [number, number, number, number, number][] = [
      [1, 10, 10, 0.800214, 1],
      [0.8, 20, 30, 0.643346, 0.894146],
      [0.5, 5, 5, 0.205613, 0.794387],
      [0.95, 12, 40, 0.808269, 0.987228],
      [0, 8, 9, 0, 0.232285],
      [1, 4, 20, 0.722373, 1],
    ];
    for (const [auc, m, n, lo, hi] of cases) {
      const [a, b] = newcombeAucInterval(auc, m, n);
      expect(a, `${auc} ${m} ${n}`).toBeCloseTo(lo, 5);
      expect(b, `${auc} ${m} ${n}`).toBeCloseTo(hi, 5);
    }
  });

  it('a perfect separation on 20 + 4 slides, one per patient, gets an interval that does not collapse', () => {
    const labels = [...Array(20).fill(1), ...Array(4).fill(0)];
    const scores = labels.map((l, i) => (l ? 0.6 + i / 100 : 0.1 + i / 100));
    const patients = labels.map((_, i) => `p${i}`);
    const e = aucEstimate(
      labels,
      patients,
      (rows) =>
        auroc(
          Array.from(rows, (i) => labels[i]),
          Array.from(rows, (i) => scores[i]),
        ),
      {
        resamples: 300,
        seed: 1,
      },
    );
    expect(e.value).toBe(1);
    expect(e.ci95[1]).toBe(1);
    expect(e.ci95[0]).toBeLessThan(0.9);
    expect(e.ci95[0]).toBeCloseTo(newcombeAucInterval(1, 20, 4)[0], 10);
    const sens = proportionEstimate(Array(20).fill(1), patients.slice(0, 20), { resamples: 300, seed: 1 });
    expect(sens.ci95[0]).toBeCloseTo(0.838875, 6);
  });

  it('patients with several slides shrink the effective sample size (design effect), never below the slide count', () => {
    // 10 patients x 4 slides, outcomes identical within a patient: the information is 10 units, not 40.
    const success = Array.from({ length: 40 }, (_, i) => (Math.floor(i / 4) < 6 ? 1 : 0));
    const patients = Array.from({ length: 40 }, (_, i) => `p${Math.floor(i / 4)}`);
    const e = proportionEstimate(success, patients, { resamples: 2000, seed: 3 });
    expect(e.value).toBeCloseTo(0.6, 12);
    expect(e.effectiveN).toBeGreaterThan(7);
    expect(e.effectiveN).toBeLessThan(14);
    const independent = proportionEstimate(
      success,
      success.map((_, i) => `q${i}`),
      { resamples: 2000, seed: 3 },
    );
    expect(independent.effectiveN).toBeCloseTo(40, 6);
    expect(e.ci95[1] - e.ci95[0]).toBeGreaterThan(1.5 * (independent.ci95[1] - independent.ci95[0]));
  });

  it('BCa matches scipy.stats._resampling._bca_interval on the same bootstrap distribution', () => {
    const x = [0.2, 0.9, 0.4, 1.3, 0.1, 2.7, 0.5, 0.8, 0.3, 1.9, 0.6, 4.1];
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const boot = Array.from({ length: 400 }, (_, i) => mean(x) + 0.35 * Math.sin(i * 1.7) + 0.2 * Math.sin(i * 0.31) ** 2);
    const jack = x.map((_, j) => mean(x.filter((__, i) => i !== j)));
    const [lo, hi] = bcaInterval(mean(x), boot, jack);
    // scipy 1.17.1: alpha_1 0.01739427, alpha_2 0.96101988, then np.percentile of the same values.
    expect(lo).toBeCloseTo(0.8181632115771145, 6);
    expect(hi).toBeCloseTo(1.6519732249961459, 6);
  });

  it('a bootstrap that gives one value every time gives no interval, with the reason', () => {
    const e = bootstrapByPatient(['a', 'b', 'c', 'd'], () => 1, { resamples: 100, seed: 1 });
    expect(e.value).toBe(1);
    expect(e.ci95.every(Number.isNaN)).toBe(true);
    expect(e.note).toMatch(/every resample gave 1\.000/);
  });

  it('normal CDF and quantile are inverse and match tables', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 7);
    expect(normalCdf(-1)).toBeCloseTo(0.15865525393145707, 7);
    for (const p of [0.001, 0.02, 0.3, 0.5, 0.9, 0.999]) expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 6);
  });
});
