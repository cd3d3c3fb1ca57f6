import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TileRow } from '../../src/data/index.ts';
import {
  allowedPatterns,
  headLoss,
  headProbabilities,
  patternTargets,
  selectBackend,
  supervisionOf,
  type PatternTargets,
} from '../../src/train/index.ts';
import { tilePatternClass } from '../../src/train/patternTargets.ts';
import { CANCER_TILE_SHARE } from '../../src/data/index.ts';

beforeAll(async () => {
  await selectBackend('cpu');
});

type Mask = Partial<Pick<TileRow, 'maskBenign' | 'maskCancer' | 'maskG3' | 'maskG4' | 'maskG5'>>;
const tile = (grade: number, gleason: string, mask: Mask = {}) =>
  ({
    slideId: 's',
    patientId: 'p',
    site: 'a',
    scanner: 'x',
    grade,
    labels: { gleason_score: gleason },
    anomaly: '',
    ...mask,
  }) as unknown as TileRow;

/** Tile i's groups as [weight, member classes] pairs, zero-weight groups left out. */
function groupsOf(t: PatternTargets, i: number): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (let g = 0; g < 4; g++) {
    const w = t.weights[i * 4 + g];
    if (w === 0) continue;
    const members = [0, 1, 2, 3].filter((c) => t.members[(i * 4 + g) * 4 + c] === 1);
    out.push([Number(w.toFixed(6)), members]);
  }
  return out;
}

describe('pattern targets from masks and labels', () => {
  const tiles = [
    tile(0, 'negative', { maskBenign: 0.6, maskCancer: 0, maskG3: 0, maskG4: 0, maskG5: 0 }),
    // 0.3 of 0.6 tissue is cancer: a cancer tile, its cancer 2/3 pattern 3 and 1/3 pattern 4.
    tile(2, '3+4', { maskBenign: 0.3, maskCancer: 0.3, maskG3: 0.2, maskG4: 0.1, maskG5: 0 }),
    // Cancer under a tenth of the tissue: benign.
    tile(2, '3+4', { maskBenign: 0.7, maskCancer: 0.05, maskG3: 0.05, maskG4: 0, maskG5: 0 }),
    // Karolinska: benign or cancer only; the cancer is one of the slide's patterns.
    tile(2, '3+4', { maskBenign: 0.2, maskCancer: 0.6 }),
    tile(0, 'negative'),
    tile(5, '4+5'),
    tile(3, ''),
  ];
  const t = patternTargets(tiles);

  it('gives each kind of tile its groups', () => {
    expect(groupsOf(t, 0)).toEqual([[1, [0]]]);
    expect(groupsOf(t, 1)).toEqual([
      [0.666667, [1]],
      [0.333333, [2]],
    ]);
    expect(groupsOf(t, 2)).toEqual([[1, [0]]]);
    expect(groupsOf(t, 3)).toEqual([[1, [1, 2]]]);
    expect(groupsOf(t, 4)).toEqual([[1, [0]]]);
    expect(groupsOf(t, 5)).toEqual([[1, [0, 2, 3]]]);
    expect(groupsOf(t, 6)).toEqual([[1, [0, 1, 2]]]);
    expect(tiles.map(supervisionOf)).toEqual(['patterns', 'patterns', 'patterns', 'cancer', 'label', 'label', 'label']);
    expect(tiles.map(tilePatternClass)).toEqual([0, 1, 0, undefined, undefined, undefined, undefined]);
    expect(CANCER_TILE_SHARE).toBe(0.1);
  });

  it("allows the score's patterns, or the grade group's possible ones", () => {
    expect(allowedPatterns(tile(4, '5+3'))).toEqual([3, 5]);
    expect(allowedPatterns(tile(4, ''))).toEqual([3, 4, 5]);
    expect(allowedPatterns(tile(1, ''))).toEqual([3]);
  });

  it('the loss by hand: -(2/3 ln p3 + 1/3 ln p4) and -ln(p0 + p4 + p5)', () => {
    // softmax([0, ln 2, 0, ln 4]) = [1, 2, 1, 4] / 8 for both tiles.
    const logits = tf.tensor2d([0, Math.log(2), 0, Math.log(4), 0, Math.log(2), 0, Math.log(4)], [2, 4]);
    const two = patternTargets([tiles[1], tiles[5]]);
    const loss = headLoss(logits, 'patterns', 6, new Int32Array(2), 0, undefined, two).dataSync()[0];
    const expected = (-((2 / 3) * Math.log(2 / 8) + (1 / 3) * Math.log(1 / 8)) - Math.log(6 / 8)) / 2;
    expect(loss).toBeCloseTo(expected, 5);
    const probs = headProbabilities(logits, 'patterns', 6).arraySync()[0];
    expect(probs.map((v) => Number(v.toFixed(6)))).toEqual([0.125, 0.25, 0, 0, 0.125, 0.5]);
  });

  it('its gradient matches central finite differences', () => {
    const values = [0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0, 0.6, 0.1, 0.1, -0.3, 0.4];
    const three = patternTargets([tiles[1], tiles[3], tiles[5]]);
    const f = (v: number[]) =>
      tf.tidy(() => headLoss(tf.tensor2d(v, [3, 4]), 'patterns', 6, new Int32Array(3), 0, undefined, three).dataSync()[0]);
    const grad = tf.grad((x: tf.Tensor) => headLoss(x as tf.Tensor2D, 'patterns', 6, new Int32Array(3), 0, undefined, three))(
      tf.tensor2d(values, [3, 4]),
    );
    const g = grad.dataSync();
    const h = 1e-3;
    values.forEach((_, i) => {
      const plus = values.slice();
      const minus = values.slice();
      plus[i] += h;
      minus[i] -= h;
      expect(g[i]).toBeCloseTo((f(plus) - f(minus)) / (2 * h), 3);
    });
  });
});
