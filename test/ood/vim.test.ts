import { describe, expect, it } from 'vitest';
import { createDetector, recoverLinearHead, vimOrigin, type FeatureSet } from '../../src/ood/index.ts';
import { references } from '../fixtures/reference/references.ts';

const r = references.vim as {
  W: number[][];
  b: number[];
  train: number[][];
  test: number[][];
  dim: number;
  u: number[];
  alpha: number;
  score: number[];
};
const k = r.W.length;
const d = r.W[0].length;

function set(rows: number[][]): FeatureSet {
  const features = Float32Array.from(rows.flat());
  const logits = Float32Array.from(rows.flatMap((x) => r.W.map((w, c) => w.reduce((s, v, j) => s + v * x[j], r.b[c]))));
  return { n: rows.length, k, d, features, logits, labels: new Int32Array(rows.length) };
}

describe('ViM against the official formula (make-references.py)', () => {
  it('recovers the head from features and logits, and its origin -pinv(W) b', () => {
    const { w, b } = recoverLinearHead(set(r.train));
    r.W.flat().forEach((v, i) => expect(w[i]).toBeCloseTo(v, 3));
    r.b.forEach((v, i) => expect(b[i]).toBeCloseTo(v, 3));
    const u = vimOrigin(Float64Array.from(r.W.flat()), Float64Array.from(r.b), k, d);
    r.u.forEach((v, i) => expect(u[i]).toBeCloseTo(v, 10));
  });

  it('scores as the official code does: alpha times the residual about u, minus the energy', () => {
    const vim = createDetector('vim', { dim: r.dim });
    vim.fit(set(r.train));
    const scores = vim.score(set(r.test));
    // float32 features: agreement to about 1e-4 relative.
    r.score.forEach((v, i) => expect(Math.abs(scores[i] - v)).toBeLessThan(2e-3 * Math.max(1, Math.abs(v))));
  });

  it('refuses a head that is not a linear map of the features', () => {
    const x = set(r.train);
    for (let i = 0; i < x.logits.length; i++) x.logits[i] = Math.tanh(x.logits[i]) * 3;
    expect(() => createDetector('vim').fit(x)).toThrow(/ViM needs a head that is a linear map/);
  });
});
