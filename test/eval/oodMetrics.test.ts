import { describe, expect, it } from 'vitest';
import { auprTrapezoid, averagePrecision, fprAtTpr, oodMetrics, auroc } from '../../src/eval/index.ts';
import { perDetectorBins } from '../../src/eval/index.ts';
import { references } from '../fixtures/reference/references.ts';

describe("OOD metrics as OpenOOD computes them (scikit-learn's curves, from make-references.py)", () => {
  const r = references.openood as {
    conf: number[];
    ood: number[];
    auroc: number;
    fpr95: number;
    aupr_in: number;
    aupr_out: number;
    ap_out: number;
  };
  // OpenOOD's conf is "higher = in-distribution"; gradelab's scores are "higher = OOD".
  const scores = Float64Array.from(r.conf, (c) => -c);
  const isOod = Int32Array.from(r.ood);

  it("AUROC, FPR@95TPR, AUPR-In and AUPR-Out equal OpenOOD's to 1e-12, on scores with ties", () => {
    expect(auroc(isOod, scores)).toBeCloseTo(r.auroc, 12);
    expect(fprAtTpr(isOod, scores)).toBeCloseTo(r.fpr95, 12);
    expect(
      auprTrapezoid(
        Int32Array.from(isOod, (v) => 1 - v),
        Float64Array.from(scores, (s) => -s),
      ),
    ).toBeCloseTo(r.aupr_in, 12);
    expect(auprTrapezoid(isOod, scores)).toBeCloseTo(r.aupr_out, 12);
    const m = oodMetrics(
      isOod,
      scores,
      r.conf.map((_, i) => `p${i}`),
      { resamples: 20, seed: 1 },
    );
    expect(m.aupr_out.value).toBeCloseTo(r.aupr_out, 12);
    expect(m.aupr_in.value).toBeCloseTo(r.aupr_in, 12);
  });

  it('reports the trapezoid area, not average precision (they differ on these scores)', () => {
    expect(averagePrecision(isOod, scores)).toBeCloseTo(r.ap_out, 12);
    expect(Math.abs(r.ap_out - r.aupr_out)).toBeGreaterThan(1e-3);
  });
});

describe('OOD score histograms', () => {
  it('bin each detector on its own range, so a detector scoring near 1 is not squashed by one scoring in the millions', () => {
    const scores = [
      ...Array.from({ length: 100 }, (_, i) => ({ detector: 'energy', set: i < 50 ? 'in-distribution' : 'OOD', score: i / 100 })),
      ...Array.from({ length: 100 }, (_, i) => ({ detector: 'qc-all', set: i < 50 ? 'in-distribution' : 'OOD', score: 1e6 * i })),
    ];
    const bins = perDetectorBins(scores, 10);
    const energy = bins.filter((b) => b.detector === 'energy');
    // 1st-99th percentile of 0..0.99 (type 7): 0.0099 to 0.9801, ten equal bins.
    expect(energy[0].start).toBeCloseTo(0.0099, 10);
    expect(energy[9].end).toBeCloseTo(0.9801, 10);
    expect(energy.filter((b) => b.set === 'in-distribution').reduce((a, b) => a + b.count, 0)).toBe(50);
    expect(energy.filter((b) => b.set === 'OOD').reduce((a, b) => a + b.count, 0)).toBe(50);
    // In-distribution scores (below 0.5) fill the first five bins only.
    expect(energy.filter((b) => b.set === 'in-distribution' && b.start >= 0.5).every((b) => b.count === 0)).toBe(true);
    const qc = bins.filter((b) => b.detector === 'qc-all');
    expect(qc[0].start).toBeCloseTo(0.99e6, 3);
    expect(qc[9].end).toBeCloseTo(98.01e6, 3);
  });
});
