import { describe, expect, it } from 'vitest';
import { createRng, headProbabilities } from '../../src/core/index.ts';
import { classwiseEce, equalMassEce, fitTemperature, negativeLogLikelihood } from '../../src/metrics/index.ts';

/** n cases of k classes: labels drawn from softmax(z), and logits `scale` times z (over-confident for scale > 1). */
function simulate(n: number, k: number, scale: number, seed: number) {
  const rng = createRng(seed);
  const logits = new Float32Array(n * k);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: k }, () => 1.5 * rng.normal());
    const m = Math.max(...z);
    const p = z.map((v) => Math.exp(v - m));
    const s = p.reduce((a, b) => a + b, 0);
    let u = rng.next() * s;
    let c = 0;
    while (c < k - 1 && (u -= p[c]) > 0) c++;
    y.push(c);
    z.forEach((v, j) => (logits[i * k + j] = scale * v));
  }
  return { logits, y };
}

/**
 * An independent optimiser: Newton's method on beta = 1 / T, where the softmax NLL is convex with
 * gradient mean(E_p[z] - z_y) and curvature mean(Var_p[z]).
 */
function newtonTemperature(logits: Float32Array, y: number[], k: number): number {
  let beta = 1;
  for (let it = 0; it < 100; it++) {
    let g = 0;
    let h = 0;
    for (let i = 0; i < y.length; i++) {
      const z = Array.from(logits.subarray(i * k, (i + 1) * k));
      const m = Math.max(...z.map((v) => beta * v));
      const e = z.map((v) => Math.exp(beta * v - m));
      const s = e.reduce((a, b) => a + b, 0);
      const mean = z.reduce((a, v, j) => a + (v * e[j]) / s, 0);
      const second = z.reduce((a, v, j) => a + (v * v * e[j]) / s, 0);
      g += mean - z[y[i]];
      h += second - mean * mean;
    }
    // Newton's step, halved while it would leave beta > 0.
    let step = g / h;
    while (beta - step <= 0) step /= 2;
    beta -= step;
    if (Math.abs(step) < 1e-12) break;
  }
  return 1 / beta;
}

describe('temperature scaling', () => {
  it('finds the temperature Newton finds on the same logits, to 1e-4', () => {
    for (const [scale, seed] of [
      [2.5, 1],
      [0.6, 2],
      [1, 3],
    ]) {
      const { logits, y } = simulate(3000, 6, scale, seed);
      const nll = (t: number) => negativeLogLikelihood(y, headProbabilities(logits, y.length, 'softmax', 6, t), 6);
      const t = fitTemperature(nll);
      expect(Math.abs(t - newtonTemperature(logits, y, 6)), `scale ${scale}`).toBeLessThan(1e-4);
      // Labels drawn from softmax(z) and logits scale * z: the fitted T is near the scale.
      expect(Math.abs(t - scale) / scale, `scale ${scale}`).toBeLessThan(0.08);
      expect(nll(t)).toBeLessThanOrEqual(nll(1) + 1e-12);
    }
  });

  it('divides CORAL threshold logits by the temperature too', () => {
    const logits = Float32Array.from([2, 0.5, -1]);
    const scaled = headProbabilities(logits, 1, 'ordinal', 4, 2);
    expect(Array.from(scaled)).toEqual(Array.from(headProbabilities(Float32Array.from([1, 0.25, -0.5]), 1, 'ordinal', 4)));
  });
});

describe('calibration error by hand', () => {
  // Four cases of two classes: top confidences 0.6 (right), 0.7 (wrong), 0.8 (right), 0.9 (right).
  const y = [0, 0, 1, 1];
  const probs = Float64Array.from([0.6, 0.4, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9]);

  it('equal-mass ECE: two bins of two cases', () => {
    // Bin 1: confidence 0.65, accuracy 0.5; bin 2: confidence 0.85, accuracy 1. ECE = 0.5 * 0.15 + 0.5 * 0.15.
    const r = equalMassEce(y, probs, 2, 2);
    expect(r.ece).toBeCloseTo(0.15, 12);
    expect(r.bins.map((b) => b.count)).toEqual([2, 2]);
  });

  it('classwise ECE: each class on its own probability, averaged', () => {
    // Two bins of width 0.5, each bin's |hits - summed probability| over the 4 cases.
    // Class 0 (P = 0.6, 0.3, 0.2, 0.1; cases 0 and 1 are class 0): [0, 0.5) holds 0.3 (hit), 0.2, 0.1: |1 - 0.6| / 4;
    // [0.5, 1) holds 0.6 (hit): |1 - 0.6| / 4. Class 1 (P = 0.4, 0.7, 0.8, 0.9; cases 2 and 3): [0, 0.5) holds 0.4
    // (miss): |0 - 0.4| / 4; [0.5, 1) holds 0.7 (miss), 0.8 and 0.9 (hits): |2 - 2.4| / 4. Each class 0.2; mean 0.2.
    expect(classwiseEce(y, probs, 2, 2)).toBeCloseTo(0.2, 12);
  });
});
