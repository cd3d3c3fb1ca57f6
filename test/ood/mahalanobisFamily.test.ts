import { describe, expect, it } from 'vitest';
import { createDetector, type FeatureSet } from '../../src/ood/index.ts';
import { references } from '../fixtures/reference/references.ts';

const v = references.vim as { W: number[][]; b: number[]; train: number[][]; test: number[][] };
const m = references.mahalanobisFamily as { labels: number[]; rmds: number[]; 'mahalanobis++': number[] };
const s = references.shaping as { test: number[][]; ash: number[]; scale: number[] };
const k = v.W.length;
const d = v.W[0].length;

function set(rows: number[][], labels?: number[]): FeatureSet {
  return {
    n: rows.length,
    k,
    d,
    features: Float32Array.from(rows.flat()),
    logits: Float32Array.from(rows.flatMap((x) => v.W.map((w, c) => w.reduce((acc, val, j) => acc + val * x[j], v.b[c])))),
    ...(labels ? { labels: Int32Array.from(labels) } : {}),
  };
}

/** Scores equal to the reference's within float32 rounding of the features, relative to their spread. */
function expectScores(got: Float64Array, want: number[], name: string): void {
  const spread = Math.max(...want) - Math.min(...want);
  want.forEach((w, i) => expect(Math.abs(got[i] - w) / spread, `${name} ${i}`).toBeLessThan(1e-4));
}

/** A detector's scores after its state is saved and loaded: what `gradelab ood fit` stores. */
function reloaded(name: string, train: FeatureSet, test: FeatureSet): Float64Array {
  const fitted = createDetector(name);
  fitted.fit(train);
  const { json, arrays } = fitted.state();
  const fresh = createDetector(name);
  fresh.load(JSON.parse(JSON.stringify(json)), arrays);
  return fresh.score(test);
}

describe("the Mahalanobis family against OpenOOD's postprocessors (make-references.py)", () => {
  for (const name of ['rmds', 'mahalanobis++'] as const)
    it(`${name}: the scores OpenOOD's code gives`, () => {
      const det = createDetector(name);
      const train = set(v.train, m.labels);
      det.fit(train);
      expectScores(det.score(set(v.test)), m[name], name);
      expectScores(reloaded(name, train, set(v.test)), m[name], `${name} reloaded`);
    });

  it('RMDS is the class distance minus the background distance: symmetric classes score alike, a class centre below the background centre', () => {
    // Two classes symmetric about the origin: the background Gaussian is centred at 0.
    const rows = [
      [1, 0],
      [1.2, 0.3],
      [0.8, -0.3],
      [-1, 0],
      [-1.2, -0.3],
      [-0.8, 0.3],
    ];
    const two: FeatureSet = {
      n: 6,
      k: 2,
      d: 2,
      features: Float32Array.from(rows.flat()),
      logits: new Float32Array(12),
      labels: Int32Array.from([0, 0, 0, 1, 1, 1]),
    };
    const det = createDetector('rmds');
    det.fit(two);
    const q = (x: number, y: number) =>
      det.score({ n: 1, k: 2, d: 2, features: Float32Array.from([x, y]), logits: new Float32Array(2) })[0];
    expect(q(1, 0)).toBeCloseTo(q(-1, 0), 10);
    // A class centre is nearer its class than the background's centre is: its relative distance is lower.
    expect(q(1, 0)).toBeLessThan(q(0, 0));
  });
});

describe("activation shaping against OpenOOD's ash_b and scale (make-references.py)", () => {
  for (const name of ['ash', 'scale'] as const)
    it(`${name}: minus the energy of the shaped features' logits`, () => {
      const det = createDetector(name);
      const train = set(v.train);
      det.fit(train);
      expectScores(det.score(set(s.test)), s[name], name);
      expectScores(reloaded(name, train, set(s.test)), s[name], `${name} reloaded`);
    });
});
