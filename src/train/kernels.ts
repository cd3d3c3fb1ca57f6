import * as tf from '@tensorflow/tfjs-core';
import { convInfo, convPadded, inputGradPadding, padOrCrop, type Pad } from './convGeometry.ts';
import { depthwiseFilterGrad, depthwiseInputGrad } from './depthwiseGrads.ts';

/**
 * Training kernels the tfjs wasm backend lacks, built from kernels it has (XNNPACK Conv2D, depthwise
 * conv, pad, transpose), so their cost is that of a forward convolution:
 *
 * - Conv2DBackpropFilter: dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s + kh*d, ow*s + kw*d, ci] dy[n,oh,ow,co]
 *   is a forward convolution of x (transposed to [Ci, H, W, N], batch as channels) with dy (as an
 *   [OH, OW, N, Co] filter) dilated by the stride. (With both stride and dilation above 1, which tfjs
 *   convolutions do not take together, one matrix product per kernel offset.)
 * - Conv2DBackpropInput: a forward convolution of the padded dy with the flipped filter at stride 1,
 *   one per sub-pixel phase at larger strides (replaces the wasm backend's own, about 10x slower).
 * - DepthwiseConv2dNativeBackpropFilter / -Input: a depthwise convolution of x with dy (batch folded into
 *   the channels) and a flipped depthwise convolution.
 *
 * Every kernel is checked against the cpu backend and finite differences in test/train/kernels.test.ts.
 */

export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: [number, number],
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ci, co] = filterShape;
    const [sh, sw] = strides;
    const [dh, dw] = dilations;
    const [n, oh, ow] = dy.shape;
    if ((sh === 1 || dh === 1) && (sw === 1 || dw === 1) && !(sh > 1 && dw > 1) && !(sw > 1 && dh > 1)) {
      const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [Ci, H, W, N]
      const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, N, Co]
      // Stride of the forward conv becomes dilation here, and dilation becomes stride.
      const out = convPadded(xt, f, [dh, dw], pad.top, pad.bottom, pad.left, pad.right, [sh, sw]); // [Ci, >=KH, >=KW, Co]
      return tf.transpose(tf.slice(out, [0, 0, 0, 0], [ci, kh, kw, co]), [1, 2, 0, 3]) as tf.Tensor4D;
    }
    const xp = padOrCrop(x, pad.top, pad.bottom, pad.left, pad.right);
    const dy2 = tf.reshape(dy, [n * oh * ow, co]);
    const taps: tf.Tensor2D[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const xs = tf.stridedSlice(
          xp,
          [0, a * dh, b * dw, 0],
          [n, a * dh + (oh - 1) * sh + 1, b * dw + (ow - 1) * sw + 1, ci],
          [1, sh, sw, 1],
        );
        taps.push(tf.matMul(tf.reshape(xs, [n * oh * ow, ci]), dy2, true, false));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, ci, co]) as tf.Tensor4D;
  });
}

/** The stride-1 input gradient: a convolution of the padded (or cropped) dy with the flipped filter. */
function unitStrideInputGrad(
  h: number,
  w: number,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [KH, KW, Co, Ci]
  return convPadded(dy, flipped, [1, 1], ...inputGradPadding(h, w, dy.shape[1], dy.shape[2], kh, kw, pad, dilations), dilations);
}

/**
 * The input gradient of a strided convolution by sub-pixel decomposition: input rows i = ph + s j
 * (phase ph) receive only the taps a = rh + s t with rh = (ph + pad) mod s, so each of the s_h x s_w
 * phases is a stride-1 convolution of dy with that sub-filter, flipped, and the phases interleave
 * into dx. Dilating dy with zeros instead (paddedForInputGrad) multiplies by s_h s_w the work,
 * three quarters of it on zeros at stride 2: this measured 3-11x a forward convolution per layer.
 */
function stridedInputGrad(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: [number, number],
  pad: Pad,
): tf.Tensor4D {
  const [n, h, w, ci] = xShape;
  const [kh, kw, , co] = filter.shape;
  const [sh, sw] = strides;
  const [, oh, ow] = dy.shape;
  const hq = Math.ceil(h / sh);
  const wq = Math.ceil(w / sw);
  const rows: tf.Tensor[] = [];
  for (let ph = 0; ph < sh; ph++) {
    const cols: tf.Tensor[] = [];
    for (let pw = 0; pw < sw; pw++) {
      const rh = (ph + pad.top) % sh;
      const rw = (pw + pad.left) % sw;
      const krh = rh < kh ? Math.ceil((kh - rh) / sh) : 0;
      const krw = rw < kw ? Math.ceil((kw - rw) / sw) : 0;
      if (!krh || !krw) {
        cols.push(tf.zeros([n, hq, wq, ci]));
        continue;
      }
      // dx[ph + s j] = sum_t dy[j + q0 - t] w[rh + s t]: a valid correlation with the flipped
      // sub-filter over dy shifted by krh - 1 - q0 and sized to give hq rows.
      const top = krh - 1 - Math.floor((ph + pad.top) / sh);
      const left = krw - 1 - Math.floor((pw + pad.left) / sw);
      const sub = tf.stridedSlice(filter, [rh, rw, 0, 0], [kh, kw, ci, co], [sh, sw, 1, 1]) as tf.Tensor4D;
      const flipped = tf.transpose(tf.reverse(sub, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
      cols.push(convPadded(dy, flipped, [1, 1], top, hq + krh - 1 - oh - top, left, wq + krw - 1 - ow - left, [1, 1]));
    }
    rows.push(tf.stack(cols, 3)); // [n, hq, wq, sw, ci]
  }
  const interleaved = tf.reshape(tf.stack(rows, 2), [n, hq * sh, wq * sw, ci]);
  return (hq * sh === h && wq * sw === w ? interleaved : tf.slice(interleaved, [0, 0, 0, 0], [n, h, w, ci])) as tf.Tensor4D;
}

export function conv2dInputGrad(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: [number, number],
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    // tfjs convolutions never combine stride and dilation above 1.
    if (strides[0] > 1 || strides[1] > 1) return stridedInputGrad(xShape, dy, filter, strides, pad);
    return unitStrideInputGrad(xShape[1], xShape[2], dy, filter, pad, dilations);
  });
}

let registered = false;

/** Registers the training kernels for the wasm backend (idempotent). */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  const asPair = (v: number | number[]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: unknown;
        dataFormat: string;
        dimRoundingMode: unknown;
        filterShape: [number, number, number, number];
        dilations?: number | [number, number];
      };
      if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter on wasm: only NHWC');
      const info = convInfo(x.shape, a.filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false);
      return conv2dFilterGrad(x, dy, a.filterShape, asPair(a.strides), info.padInfo, asPair(a.dilations ?? 1)) as unknown as tf.TensorInfo;
    },
  });
  // The wasm backend has its own Conv2DBackpropInput, about ten times slower: replace it.
  if (tf.getKernel('Conv2DBackpropInput', 'wasm')) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { dy, filter } = inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: unknown;
        dataFormat: string;
        dimRoundingMode: unknown;
        inputShape: [number, number, number, number];
        dilations?: number | [number, number];
      };
      if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropInput on wasm: only NHWC');
      const info = convInfo(a.inputShape, filter.shape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false);
      return conv2dInputGrad(
        a.inputShape,
        dy,
        filter,
        asPair(a.strides),
        info.padInfo,
        asPair(a.dilations ?? 1),
      ) as unknown as tf.TensorInfo;
    },
  });
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: unknown;
        dimRoundingMode: unknown;
        filterShape: [number, number, number, number];
        dilations: number | [number, number];
      };
      const info = convInfo(x.shape, a.filterShape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true);
      return depthwiseFilterGrad(x, dy, a.filterShape, asPair(a.strides), info.padInfo, asPair(a.dilations)) as unknown as tf.TensorInfo;
    },
  });
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { dy, filter } = inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: unknown;
        dimRoundingMode: unknown;
        inputShape: [number, number, number, number];
        dilations: number | [number, number];
      };
      const info = convInfo(a.inputShape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true);
      return depthwiseInputGrad(a.inputShape, dy, filter, asPair(a.strides), info.padInfo, asPair(a.dilations)) as unknown as tf.TensorInfo;
    },
  });
}
