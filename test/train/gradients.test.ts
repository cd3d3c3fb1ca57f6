import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/train/index.ts';

/**
 * gradelab's FusedBatchNorm gradient (registered by selectBackend for every backend) against central
 * finite differences, for each of its five inputs and through batch statistics as in training.
 */
beforeAll(async () => {
  await selectBackend('wasm');
});

const values = (n: number, seed: number, lo = -1, hi = 1) =>
  Float32Array.from({ length: n }, (_, i) => lo + ((Math.sin(i * 2.17 + seed) + 1) / 2) * (hi - lo));
const X = [2, 3, 4, 5];
const C = 5;

function finiteDifference(
  loss: (arrays: Float32Array[]) => number,
  arrays: Float32Array[],
  which: number,
  index: number,
  h = 1e-3,
): number {
  const plus = arrays.map((a) => a.slice());
  const minus = arrays.map((a) => a.slice());
  plus[which][index] += h;
  minus[which][index] -= h;
  return (loss(plus) - loss(minus)) / (2 * h);
}

describe('batch norm gradient', () => {
  const xv = values(
    X.reduce((a, b) => a * b),
    1,
  );
  const wv = values(xv.length, 2);
  it('matches finite differences for x, mean, variance, scale and offset', () => {
    const inputs = [xv, values(C, 3, -0.2, 0.2), values(C, 4, 0.5, 2), values(C, 5, 0.5, 1.5), values(C, 6, -0.3, 0.3)];
    const lossOf = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.mul(tf.batchNorm(x, m, v, o, s, 1e-3), tf.tensor(wv, X)));
    const tensors = (a: Float32Array[]) => [tf.tensor(a[0], X), ...a.slice(1).map((t) => tf.tensor1d(t))];
    const grads = tf.tidy(() =>
      tf
        .grads((...t: tf.Tensor[]) => lossOf(t[0], t[1], t[2], t[3], t[4]))(tensors(inputs))
        .map((g) => g.dataSync().slice()),
    );
    const loss = (a: Float32Array[]) =>
      tf.tidy(() => {
        const t = tensors(a);
        return lossOf(t[0], t[1], t[2], t[3], t[4]).dataSync()[0];
      });
    for (let which = 0; which < 5; which++) {
      for (const i of which === 0 ? [0, 17, 64, 119] : [0, 2, 4])
        expect(grads[which][i]).toBeCloseTo(finiteDifference(loss, inputs, which, i), 2);
    }
  });
  it('matches finite differences through batch statistics (a training-mode batch norm)', () => {
    const scale = values(C, 7, 0.5, 1.5);
    const lossOf = (x: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.sum(
        tf.mul(tf.batchNorm(x, mean, variance, tf.tensor1d(values(C, 8, -0.3, 0.3)), tf.tensor1d(scale), 1e-3), tf.tensor(wv, X)),
      );
    };
    const grad = tf.tidy(() => tf.grad(lossOf)(tf.tensor(xv, X)).dataSync().slice());
    const loss = (a: Float32Array[]) => tf.tidy(() => lossOf(tf.tensor(a[0], X)).dataSync()[0]);
    for (const i of [0, 9, 33, 80, 119]) expect(grad[i]).toBeCloseTo(finiteDifference(loss, [xv], 0, i), 2);
  });
});
