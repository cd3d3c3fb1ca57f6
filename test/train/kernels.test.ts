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
    const x = tf.tensor4d(
      values(
        xs.reduce((a, b) => a * b),
        1,
      ),
      xs as [number, number, number, number],
    );
    const w = tf.tensor4d(
      values(
        ws.reduce((a, b) => a * b),
        2,
      ),
      ws as [number, number, number, number],
    );
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) =>
      tf.sum(tf.square(depthwise ? tf.depthwiseConv2d(a, b, s, p as 'same', 'NHWC', d) : tf.conv2d(a, b, s, p as 'same', 'NHWC', d)));
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
      for (const p of [
        'same',
        'valid',
        ...(depthwise
          ? []
          : [
              [
                [0, 0],
                [1, 2],
                [0, 1],
                [0, 0],
              ],
            ]),
      ])
        for (const k of [1, 3, 5]) cases.push({ depthwise, s, p, k });
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

/**
 * Runs the backprop kernels directly against central finite differences of the forward convolution
 * (cpu backend): loss = sum(conv(x, w) * dy), so dL/dw is the filter kernel at (x, dy) and dL/dx the
 * input kernel at (dy, w).
 */
async function finiteDifferenceCheck(
  depthwise: boolean,
  s: number,
  d: number,
  pad: 'same' | 'valid',
  xs: [number, number, number, number],
  ws: [number, number, number, number],
  wIdx: number[],
  xIdx: number[],
) {
  const xv = values(
    xs.reduce((a, b) => a * b),
    depthwise ? 6 : 3,
  );
  const wv = values(
    ws.reduce((a, b) => a * b),
    depthwise ? 7 : 4,
  );
  const conv = (x: tf.Tensor4D, w: tf.Tensor4D) =>
    depthwise ? tf.depthwiseConv2d(x, w, s, pad, 'NHWC', d) : tf.conv2d(x, w, s, pad, 'NHWC', d);
  const forward = (xa: Float32Array, wa: Float32Array) =>
    onBackend('cpu', async () => tf.tidy(() => conv(tf.tensor4d(xa, xs), tf.tensor4d(wa, ws))));
  const y = await forward(xv, wv);
  const dyv = values(y.size, depthwise ? 8 : 5);
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
  const prefix = depthwise ? 'DepthwiseConv2dNativeBackprop' : 'Conv2DBackprop';
  const dW = await (
    tf.engine().runKernel(`${prefix}Filter`, { x: tf.tensor4d(xv, xs), dy: tf.tensor4d(dyv, dyShape) }, {
      ...attrs,
      filterShape: ws,
    } as never) as tf.Tensor
  ).data();
  const dX = await (
    tf.engine().runKernel(`${prefix}Input`, { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(wv, ws) }, {
      ...attrs,
      inputShape: xs,
    } as never) as tf.Tensor
  ).data();
  const h = 1e-2;
  const central = async (which: 'x' | 'w', i: number) => {
    const base = which === 'x' ? xv : wv;
    const plus = base.slice();
    const minus = base.slice();
    plus[i] += h;
    minus[i] -= h;
    const [lp, lm] = which === 'x' ? [await loss(plus, wv), await loss(minus, wv)] : [await loss(xv, plus), await loss(xv, minus)];
    return (lp - lm) / (2 * h);
  };
  for (const i of wIdx.map((v) => (v < 0 ? wv.length + v : v))) expect(dW[i]).toBeCloseTo(await central('w', i), 2);
  for (const i of xIdx.map((v) => (v < 0 ? xv.length + v : v))) expect(dX[i]).toBeCloseTo(await central('x', i), 2);
}

describe('finite differences, dilation included', () => {
  // tfjs convolutions refuse stride and dilation both above 1, so that case cannot reach a kernel.
  const configs = [
    { s: 1, d: 1, pad: 'same' },
    { s: 2, d: 1, pad: 'same' },
    { s: 1, d: 2, pad: 'same' },
    { s: 1, d: 2, pad: 'valid' },
    { s: 3, d: 1, pad: 'valid' },
  ] as const;
  it.each(configs)('conv2d stride=$s dilation=$d pad=$pad: filter and input gradients', async ({ s, d, pad }) => {
    await finiteDifferenceCheck(false, s, d, pad, [1, 9, 8, 2], [3, 3, 2, 3], [0, 7, 13, -1], [0, 11, 40, -1]);
  });
  const depthwise = [
    { s: 1, d: 2, pad: 'same' },
    { s: 1, d: 2, pad: 'valid' },
    { s: 2, d: 1, pad: 'same' },
    { s: 3, d: 1, pad: 'valid' },
  ] as const;
  it.each(depthwise)('depthwise (multiplier 2) stride=$s dilation=$d pad=$pad: filter and input gradients', async ({ s, d, pad }) => {
    await finiteDifferenceCheck(true, s, d, pad, [2, 9, 8, 3], [3, 3, 3, 2], [0, 5, 17, -1], [0, 19, 100, -1]);
  });
});
