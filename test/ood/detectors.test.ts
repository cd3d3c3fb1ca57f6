import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import { auroc, fprAtTpr, oodMetrics } from '../../src/eval/index.ts';
import {
  aggregateScores,
  calibrateThreshold,
  createDetector,
  DEFAULT_DETECTORS,
  kthNeighbourDistance,
  loadOodBundle,
  saveOodBundle,
  type FeatureSet,
} from '../../src/ood/index.ts';
import { writeModelMeta } from '../../src/core/index.ts';
import { modelMeta, tempDir } from '../helpers.ts';

/** Three in-distribution classes as Gaussian clusters; OOD points in a region no class occupies. */
function clusters(n: number, seed: string, ood: boolean): FeatureSet {
  const rng = createRng(seed);
  const d = 8;
  const k = 3;
  const features = new Float32Array(n * d);
  const logits = new Float32Array(n * k);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    for (let j = 0; j < d; j++) features[i * d + j] = (ood ? (j === 7 ? 6 : 0) : j === c ? 4 : 0) + rng.normal() * 0.7;
    // Logits from a linear head, as every gradelab head is (ViM needs it): 1.25 x the class's channel, so
    // confident for in-distribution (about 5 for its class) and flat for OOD.
    for (let q = 0; q < k; q++) logits[i * k + q] = 1.25 * features[i * d + q] - 0.5;
  }
  return { n, k, d, features, logits, labels };
}

describe('OOD detectors', () => {
  const train = clusters(300, 'train', false);
  const id = clusters(150, 'id', false);
  const ood = clusters(150, 'ood', true);
  it.each(DEFAULT_DETECTORS)('%s separates clustered in-distribution features from a novel region', (name) => {
    const det = createDetector(name);
    det.fit(train);
    const s = [...det.score(id), ...det.score(ood)];
    const labels = [...Array(id.n).fill(0), ...Array(ood.n).fill(1)];
    expect(auroc(labels, s)).toBeGreaterThan(0.95);
  });

  it.each(DEFAULT_DETECTORS)('%s: fitted state survives save and load', async (name) => {
    const dir = tempDir();
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'a'.repeat(64), featureDim: 8 }));
    const det = createDetector(name);
    det.fit(train);
    await saveOodBundle(dir, { format: 'gradelab-ood/1', accept: 0.95, primary: name, aggregation: { method: 'topk', k: 5 } }, [
      { detector: det, params: {}, threshold: 1, slideThreshold: 2 },
    ]);
    const { detectors, bundle } = loadOodBundle(dir);
    expect(bundle.detectors[0].threshold).toBe(1);
    const a = det.score(ood);
    const b = detectors.get(name)!.score(ood);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 4);
  });

  it('kNN search is exact', () => {
    const rng = createRng('knn');
    const d = 5;
    const ref = Float32Array.from({ length: 37 * d }, () => rng.normal());
    const q = Float32Array.from({ length: 3 * d }, () => rng.normal());
    const unit = (a: Float32Array, n: number) => {
      const out = new Float32Array(a.length);
      for (let i = 0; i < n; i++) {
        const norm = Math.hypot(...a.subarray(i * d, (i + 1) * d));
        for (let j = 0; j < d; j++) out[i * d + j] = a[i * d + j] / norm;
      }
      return out;
    };
    const r = unit(ref, 37);
    const qq = unit(q, 3);
    const got = kthNeighbourDistance(r, 37, qq, 3, d, 4);
    for (let i = 0; i < 3; i++) {
      const dists = Array.from({ length: 37 }, (_, j) =>
        Math.hypot(...Array.from({ length: d }, (_, t) => qq[i * d + t] - r[j * d + t])),
      ).sort((a, b) => a - b);
      expect(got[i]).toBeCloseTo(dists[3], 5);
    }
  });
});

describe('OOD metrics (OpenOOD conventions, OOD positive)', () => {
  it('FPR at 95% TPR and AUPR on hand-made scores', () => {
    // 20 OOD scored 10..29, 20 ID scored 0..19: catching 95% of OOD (19 of 20, scores >= 11) flags ID 11..19.
    const isOod = Int32Array.from([...Array(20).fill(1), ...Array(20).fill(0)]);
    const scores = Float64Array.from([...Array.from({ length: 20 }, (_, i) => 10 + i), ...Array.from({ length: 20 }, (_, i) => i)]);
    expect(fprAtTpr(isOod, scores)).toBeCloseTo(9 / 20, 10);
    const m = oodMetrics(
      isOod,
      scores,
      Array.from({ length: 40 }, (_, i) => `p${i}`),
      { resamples: 100, seed: 1 },
    );
    // OOD s in 10..19 beats s ID scores and ties one; 20..29 beat all 20: (150 + 200) / 400.
    expect(m.auroc.value).toBeCloseTo(0.875, 10);
    expect(m.aupr_out.value).toBeGreaterThan(0.7);
    expect(m.aupr_in.value).toBeGreaterThan(0.7);
    const perfect = oodMetrics(Int32Array.from([1, 1, 0, 0]), Float64Array.from([3, 4, 1, 2]), ['a', 'b', 'c', 'd'], {
      resamples: 0,
      seed: 1,
    });
    expect([perfect.auroc.value, perfect.fpr95.value, perfect.aupr_in.value, perfect.aupr_out.value]).toEqual([1, 0, 1, 1]);
  });

  it('aggregation and calibration', () => {
    const agg = aggregateScores([1, 5, 3, 0, 0], ['a', 'a', 'a', 'b', 'b'], 'topk', { k: 2 });
    expect(agg.get('a')).toBe(4);
    expect(aggregateScores([1, 5, 3], ['a', 'a', 'a'], 'mean').get('a')).toBe(3);
    expect(aggregateScores([1, 5, 3], ['a', 'a', 'a'], 'fraction', { threshold: 2 }).get('a')).toBeCloseTo(2 / 3);
    const t = calibrateThreshold(
      Array.from({ length: 101 }, (_, i) => i),
      0.95,
    );
    expect(t).toBe(95);
  });
});

describe('stored detectors know their model', () => {
  it('are refused once the model directory holds other weights or another feature width', async () => {
    const dir = tempDir();
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'a'.repeat(64), featureDim: 8 }));
    const det = createDetector('knn');
    det.fit(clusters(50, 't', false));
    await saveOodBundle(dir, { format: 'gradelab-ood/1', accept: 0.95, primary: 'knn', aggregation: { method: 'topk', k: 5 } }, [
      { detector: det, params: {}, threshold: 1, slideThreshold: 2 },
    ]);
    expect(loadOodBundle(dir).detectors.has('knn')).toBe(true);
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'b'.repeat(64), featureDim: 8 }));
    expect(() => loadOodBundle(dir)).toThrow(/detectors\.json was fitted on other weights .*refit with `gradelab ood fit/);
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'a'.repeat(64), featureDim: 16 }));
    expect(() => loadOodBundle(dir)).toThrow(/was fitted on 8 features, the model has 16/);
  });
});
