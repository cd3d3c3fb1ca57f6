import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import {
  averagePerformanceDrop,
  confounderDecodability,
  confoundingSchedule,
  cramersV,
  fitLogisticProbe,
  normalisedIntegratedDegradation,
  probeProbabilities,
  probeSweep,
  type SweepSlide,
} from '../../src/eval/index.ts';

const reference = JSON.parse(readFileSync(new URL('../fixtures/reference/representation.json', import.meta.url), 'utf8'));

describe('linear probe', () => {
  for (const ref of reference.logistic as any[]) {
    it(`equals scikit-learn's LogisticRegression (C = ${ref.c}, ${ref.classes} classes) to 1e-6`, () => {
      const x = Float64Array.from(ref.x.flat() as number[]);
      const n = ref.x.length;
      const d = ref.x[0].length;
      const probe = fitLogisticProbe(x, ref.y, n, d, ref.classes, { c: ref.c });
      const p = probeProbabilities(probe, x, n);
      (ref.probs as number[][]).forEach((row, i) => row.forEach((v, c) => expect(p[i * ref.classes + c]).toBeCloseTo(v, 6)));
    });
  }
});

describe("APD, nIPD and Cramér's V", () => {
  it("APD and nIPD equal croma's (PathoROB's reduction and croma's integral) on the same matrix", () => {
    const r = reference.reductions;
    expect(averagePerformanceDrop(r.accuracies)).toBeCloseTo(r.apd, 14);
    expect(normalisedIntegratedDegradation(r.accuracies, r.cramersV, r.chance)).toBeCloseTo(r.nipd, 14);
  });

  it('a linear fall from perfect to chance is nIPD -0.5; no change is 0', () => {
    expect(normalisedIntegratedDegradation([[1], [0.75], [0.5]], [0, 0.5, 1], 0.5)).toBeCloseTo(-0.5, 15);
    expect(normalisedIntegratedDegradation([[0.8], [0.8]], [0, 1], 0.5)).toBe(0);
    expect(Number.isNaN(normalisedIntegratedDegradation([[0.4], [0.3]], [0, 1], 0.5))).toBe(true);
  });

  it("Cramér's V by hand", () => {
    expect(
      cramersV([
        [10, 0],
        [0, 10],
      ]),
    ).toBe(1);
    expect(
      cramersV([
        [5, 5],
        [5, 5],
      ]),
    ).toBe(0);
    // Expected 15 per cell: chi2 = 4 * 25 / 15, V = sqrt(chi2 / 60) = 1/3.
    expect(
      cramersV([
        [20, 10],
        [10, 20],
      ]),
    ).toBeCloseTo(1 / 3, 15);
    // A class seen at one confounder only, in a 2 x 3 table: still fully determined, V = 1.
    expect(
      cramersV([
        [4, 4, 0],
        [0, 0, 8],
      ]),
    ).toBeCloseTo(1, 15);
  });

  it('the schedule walks V from 0 to 1 and never trains on a cell beyond what it holds', () => {
    for (const [smallest, classes] of [
      [4, 2],
      [16, 6],
      [30, 3],
    ]) {
      const s = confoundingSchedule(smallest, classes, 0.25);
      expect(s.splits[0].v).toBe(0);
      expect(s.splits.at(-1)!.v).toBeCloseTo(1, 12);
      for (const split of s.splits)
        for (const n of split.train.flat()) expect(n + Math.ceil(n * 0.25) + s.test).toBeLessThanOrEqual(smallest);
      expect(s.splits.map((x) => x.v)).toEqual([...s.splits.map((x) => x.v)].sort((a, b) => a - b));
    }
  });
});

/** 2 confounders x 2 classes x 20 slides; each slide embedding = biology * label axis + site * confounder axis + noise. */
function slides(biology: number, site: number, seed: number) {
  const rng = createRng(seed);
  const rows: SweepSlide[] = [];
  const x: number[] = [];
  for (let c = 0; c < 2; c++)
    for (let l = 0; l < 2; l++)
      for (let i = 0; i < 20; i++) {
        rows.push({ row: rows.length, label: l, confounder: c as 0 | 1 });
        x.push(biology * (2 * l - 1) + rng.normal(), site * (2 * c - 1) + rng.normal() * 0.2, rng.normal());
      }
  return { x: Float64Array.from(x), rows };
}

describe('probe sweep', () => {
  it('an embedding that carries the biology only loses nothing to confounded training (APD = nIPD = 0)', () => {
    const { x, rows } = slides(8, 0, 1);
    const sweep = probeSweep(x, 3, rows, 2, { replicates: 2, seed: 1 })!;
    expect(sweep.accuracies.flat().every((a) => a === 1)).toBe(true);
    expect([sweep.apd, sweep.nipd]).toEqual([0, 0]);
  });

  it('an embedding where the site is easier to read than the biology collapses toward chance as V reaches 1', () => {
    for (const seed of [1, 2, 3]) {
      const { x, rows } = slides(1.5, 4, seed);
      const sweep = probeSweep(x, 3, rows, 2, { replicates: 3, seed })!;
      expect(sweep.cramersV[0]).toBe(0);
      expect(sweep.cramersV.at(-1)).toBeCloseTo(1, 12);
      expect(sweep.accuracies[0].every((a) => a > 0.7)).toBe(true);
      // At V = 1 the site predicts the training label perfectly, and the probe reads the site: chance on
      // the balanced held-out slides. That last split alone moves APD by (0.5 / baseline - 1) / 6 and
      // nIPD by at least -1/12.
      expect(sweep.accuracies.at(-1)!.every((a) => a <= 0.6)).toBe(true);
      expect(sweep.apd).toBeLessThan(-0.05);
      expect(sweep.nipd).toBeLessThan(-0.05);
    }
  });

  it('is undefined below 4 slides in a cell, and the same seed gives the same matrix', () => {
    const { x, rows } = slides(1.5, 4, 1);
    expect(
      probeSweep(
        x,
        3,
        rows.filter((r) => !(r.label === 1 && r.confounder === 1) || r.row % 20 < 3),
        2,
        { replicates: 1, seed: 1 },
      ),
    ).toBeUndefined();
    expect(probeSweep(x, 3, rows, 2, { replicates: 2, seed: 4 })!.accuracies).toEqual(
      probeSweep(x, 3, rows, 2, { replicates: 2, seed: 4 })!.accuracies,
    );
  });
});

describe('confounder decodability', () => {
  const groups = Array.from({ length: 120 }, (_, i) => `p${Math.floor(i / 2)}`);
  const sites = Int32Array.from(groups, (g) => Number(g.slice(1)) % 3);

  it('a feature that names the site is decoded perfectly', () => {
    const x = Float64Array.from([...sites].flatMap((s) => [s === 0 ? 1 : 0, s === 1 ? 1 : 0, s === 2 ? 1 : 0]));
    const r = confounderDecodability(x, 3, sites, groups, { classes: 3, seed: 1, resamples: 100 });
    expect(r.balancedAccuracy.value).toBe(1);
    expect(r.chance).toBeCloseTo(1 / 3, 15);
  });

  it('features that do not depend on the site stay near chance, out of fold', () => {
    for (const seed of [1, 2, 3]) {
      const rng = createRng(seed);
      const x = Float64Array.from({ length: 120 * 4 }, () => rng.normal());
      const r = confounderDecodability(x, 4, sites, groups, { classes: 3, seed, resamples: 100 });
      expect(r.balancedAccuracy.value).toBeLessThan(1 / 3 + 0.15);
      expect(r.folds).toBe(5);
    }
  });
});
