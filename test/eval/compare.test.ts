import { describe, expect, it } from 'vitest';
import { comparePredictions, pairedBootstrap, type PredictionRow, type Predictions } from '../../src/eval/index.ts';

function preds(path: string, rows: { id: string; patient: string; label: number; pred: number }[], k = 3): Predictions {
  return {
    path,
    k,
    rows: rows.map((r): PredictionRow => ({
      slideId: r.id,
      patientId: r.patient,
      site: 's',
      scanner: 's',
      label: r.label,
      pred: r.pred,
      probs: Array.from({ length: k }, (_, c) => (c === r.pred ? 0.8 : 0.2 / (k - 1))),
      raters: {},
      extra: {},
    })),
  };
}

describe('paired comparison', () => {
  it('gives a zero difference, a [0, 0] interval and no wins for identical predictions', () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3, pred: (i * 7) % 3 }));
    const c = comparePredictions(preds('a.csv', rows), preds('b.csv', rows), { task: 'breast', resamples: 200, seed: 1 });
    for (const m of c.metrics) {
      expect(m.difference.value).toBe(0);
      expect(m.difference.ci95).toEqual([0, 0]);
      expect(m.shareBBetter).toBe(0);
      expect(m.significant).toBe(false);
    }
  });

  it('computes the accuracy difference by hand and sees a consistent gain that unpaired intervals hide', () => {
    // 40 patients of very different difficulty: A is right on the easy half and on every fourth hard one;
    // B fixes one more hard case in every four. Accuracy A = (20 + 5) / 40, B = (20 + 10) / 40.
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3 }));
    const a = rows.map((r, i) => ({ ...r, pred: i < 20 || i % 4 === 0 ? r.label : (r.label + 1) % 3 }));
    const b = rows.map((r, i) => ({ ...r, pred: i < 20 || i % 4 === 0 || i % 4 === 1 ? r.label : (r.label + 1) % 3 }));
    const c = comparePredictions(preds('a.csv', a), preds('b.csv', b), { task: 'breast', resamples: 1000, seed: 3 });
    const acc = c.metrics.find((m) => m.metric === 'accuracy')!;
    expect(acc.a).toBeCloseTo(25 / 40, 12);
    expect(acc.b).toBeCloseTo(30 / 40, 12);
    expect(acc.difference.value).toBeCloseTo(5 / 40, 12);
    // Paired: B never does worse on a case, so every resample's difference is >= 0 and the CI excludes 0.
    expect(acc.difference.ci95[0]).toBeGreaterThan(0);
    expect(acc.significant).toBe(true);
    expect(acc.shareBBetter).toBeGreaterThan(0.99);
  });

  it('refuses predictions of different cases or labels', () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3, pred: i % 3 }));
    expect(() => comparePredictions(preds('a.csv', rows), preds('b.csv', rows.slice(1)), { task: 'breast' })).toThrow(
      /the same cases: 1 labelled slides of a\.csv \(s0\) are not in b\.csv/,
    );
    expect(() =>
      comparePredictions(
        preds('a.csv', rows),
        preds(
          'b.csv',
          rows.map((r, i) => (i === 2 ? { ...r, label: 0 } : r)),
        ),
        { task: 'breast' },
      ),
    ).toThrow(/slide s2 has label 2 in a\.csv but 0 in b\.csv/);
  });

  it('counts a lower ECE as better', () => {
    const patients = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const r = pairedBootstrap(
      patients,
      () => 0.2,
      () => 0.1,
      { resamples: 100, seed: 1, lowerIsBetter: true },
    );
    expect(r.difference.value).toBeCloseTo(-0.1, 12);
    expect(r.shareBBetter).toBe(1);
  });
});
