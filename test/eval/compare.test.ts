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
  it('gives a zero difference, no interval (identical in every resample, said so) and no wins for identical predictions', () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3, pred: (i * 7) % 3 }));
    const c = comparePredictions(preds('a.csv', rows), preds('b.csv', rows), { task: 'breast', resamples: 200, seed: 1 });
    for (const m of c.metrics) {
      expect(m.difference.value).toBe(0);
      expect(m.difference.ci95.every(Number.isNaN)).toBe(true);
      expect(m.note).toMatch(/identical in every resample/);
      expect(m.shareBBetter).toBe(0);
      expect(m.significant).toBe(false);
    }
  });

  it('gives no verdict below 20 patients, however clear the resamples look', () => {
    // 12 patients: B right on every case, A wrong on half. On 40 patients (the next test) this is shown.
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3 }));
    const a = rows.map((r, i) => ({ ...r, pred: i % 2 ? r.label : (r.label + 1) % 3 }));
    const b = rows.map((r) => ({ ...r, pred: r.label }));
    const c = comparePredictions(preds('a.csv', a), preds('b.csv', b), { task: 'breast', resamples: 500, seed: 2 });
    const acc = c.metrics.find((m) => m.metric === 'accuracy')!;
    expect(acc.difference.ci95[0]).toBeGreaterThan(0);
    expect(acc.significant).toBe(false);
    expect(acc.note).toBe('12 patients: fewer than the 20 a verdict needs');
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

  describe('several training runs per arm', () => {
    // The same 40 cases; a "lucky" run is right on 30 of them, an "unlucky" one on 20 (its first 20).
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, patient: `p${i}`, label: i % 3 }));
    const right = (n: number) => rows.map((r, i) => ({ ...r, pred: i < n ? r.label : (r.label + 1) % 3 }));
    const lucky = () => preds('lucky.csv', right(30));
    const unlucky = () => preds('unlucky.csv', right(20));
    const opts = { task: 'breast' as const, resamples: 1000, seed: 5 };
    const accuracyOf = (c: ReturnType<typeof comparePredictions>) => c.metrics.find((m) => m.metric === 'accuracy')!;

    it('one run each: the seed-to-seed gap looks like a real difference', () => {
      const single = accuracyOf(comparePredictions(unlucky(), lucky(), opts));
      expect(single.difference.value).toBeCloseTo(10 / 40, 12);
      expect(single.significant).toBe(true);
    });

    it('the same two recipes with both runs each: means by hand, and the interval covers the run draw', () => {
      const c = comparePredictions([unlucky(), lucky()], [lucky(), unlucky()], opts);
      expect([c.runsA, c.runsB]).toEqual([2, 2]);
      const acc = accuracyOf(c);
      // Each arm's estimate is the mean of its runs: (20 + 30) / 2 / 40 = 0.625, so the difference is 0.
      expect(acc.a).toBeCloseTo(0.625, 12);
      expect(acc.b).toBeCloseTo(0.625, 12);
      expect(acc.difference.value).toBeCloseTo(0, 12);
      expect(acc.significant).toBe(false);
      // Resamples that draw the lucky run twice for one arm and the unlucky twice for the other reach
      // the full gap of 10 cases either way.
      expect(acc.difference.ci95[0]).toBeLessThan(-0.15);
      expect(acc.difference.ci95[1]).toBeGreaterThan(0.15);
    });

    it('identical runs change nothing: two copies of each run give the single-run result exactly', () => {
      const single = comparePredictions(unlucky(), lucky(), opts);
      const doubled = comparePredictions([unlucky(), unlucky()], [lucky(), lucky()], opts);
      expect(doubled.metrics).toEqual(single.metrics);
    });
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
