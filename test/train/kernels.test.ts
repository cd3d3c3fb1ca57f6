import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/train/index.ts';

/**
 * Gradient checks for the wasm training kernels: against the cpu backend (tfjs's reference kernels)
 * wherever tfjs can compute the gradient, and against central finite differences of the forward
 * convolution everywhere, dilation included (tfjs's own gradients refuse dilation > 1).
 */
beforeAll(async () => {
  await selectBackend('wasm');
});

async function onBackend<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(name);
  try {
    return await fn();
  } finally {
    await tf.setBackend(prev);
  }
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.37 + seed) * 0.8);

async function gradsOn(backend: string, depthwise: boolean, xs: number[], ws: number[], s: number, p: unknown, d: number) {
  return onBackend(backend, async () => {
    const x = tf.tensor4d(values(xs.reduce((a, b) => a * b), 1), xs as [number, number, number, number]);
    const w = tf.tensor4d(values(ws.reduce((a, b) => a * b), 2), ws as [number, number, number, number]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.sum(tf.square(depthwise ? tf.depthwiseConv2d(a, b, s, p as 'same', 'NHWC', d) : tf.conv2d(a, b, s, p as 'same', 'NHWC', d)));
    const g = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    const out = [await g[0].data(), await g[1].data()];
    tf.dispose([x, w, ...g]);
    return out;
  });
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return m / scale;
}

describe('wasm training kernels against the cpu backend', () => {
  const cases: { depthwise: boolean; s: number; p: unknown; k: number }[] = [];
  for (const depthwise of [false, true]) {
    for (const s of [1, 2, 3]) {
      for (const p of ['same', 'valid', ...(depthwise ? [] : [[[0, 0], [1, 2], [0, 1], [0, 0]]])]) for (const k of [1, 3, 5]) cases.push({ depthwise, s, p, k });
    }
  }
  it.each(cases)('depthwise=$depthwise stride=$s pad=$p kernel=$k', async ({ depthwise, s, p, k }) => {
    const xs = [2, 11, 9, depthwise ? 3 : 4];
    const ws = depthwise ? [k, k, 3, 2] : [k, k, 4, 5];
    const ref = await gradsOn('cpu', depthwise, xs, ws, s, p, 1);
    const got = await gradsOn('wasm', depthwise, xs, ws, s, p, 1);
    expect(relErr(ref[0], got[0])).toBeLessThan(1e-4);
    expect(relErr(ref[1], got[1])).toBeLessThan(1e-4);
  });
});

describe('finite differences, dilation included', () => {
  // Kernels called directly: loss = sum(conv(x, w) * dy), so dL/dw is Conv2DBackpropFilter(x, dy).
  const configs = [
    // tfjs convolutions refuse stride and dilation both above 1, so that case cannot reach a kernel.
    { s: 1, d: 1, pad: 'same' }, { s: 2, d: 1, pad: 'same' }, { s: 1, d: 2, pad: 'same' }, { s: 1, d: 2, pad: 'valid' }, { s: 3, d: 1, pad: 'valid' },
  ] as const;
  it.each(configs)('conv2d stride=$s dilation=$d pad=$pad: filter and input gradients', async ({ s, d, pad }) => {
    const xs: [number, number, number, number] = [1, 9, 8, 2];
    const ws: [number, number, number, number] = [3, 3, 2, 3];
    const xv = values(xs.reduce((a, b) => a * b), 3);
    const wv = values(ws.reduce((a, b) => a * b), 4);
    const forward = (xa: Float32Array, wa: Float32Array) => onBackend('cpu', async () => tf.tidy(() => tf.conv2d(tf.tensor4d(xa, xs), tf.tensor4d(wa, ws), s, pad, 'NHWC', d)));
    const y = await forward(xv, wv);
    const dyv = values(y.size, 5);
    const dyShape = y.shape as [number, number, number, number];
    y.dispose();
    const loss = async (xa: Float32Array, wa: Float32Array) => {
      const out = await forward(xa, wa);
      const v = await out.data();
      out.dispose();
      let sum = 0;
      for (let i = 0; i < v.length; i++) sum += v[i] * dyv[i];
      return sum;
    };
    const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, dilations: [d, d] };
    const dW = await (tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, xs), dy: tf.tensor4d(dyv, dyShape) }, { ...attrs, filterShape: ws } as never) as tf.Tensor).data();
    const dX = await (tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(wv, ws) }, { ...attrs, inputShape: xs } as never) as tf.Tensor).data();
    const h = 1e-2;
    for (const i of [0, 7, 13, wv.length - 1]) {
      const plus = wv.slice();
      const minus = wv.slice();
      plus[i] += h;
      minus[i] -= h;
      const fd = ((await loss(xv, plus)) - (await loss(xv, minus))) / (2 * h);
      expect(dW[i]).toBeCloseTo(fd, 2);
    }
    for (const i of [0, 11, 40, xv.length - 1]) {
      const plus = xv.slice();
      const minus = xv.slice();
      plus[i] += h;
      minus[i] -= h;
      const fd = ((await loss(plus, wv)) - (await loss(minus, wv))) / (2 * h);
      expect(dX[i]).toBeCloseTo(fd, 2);
    }
  });
});
