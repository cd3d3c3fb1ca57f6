import * as tf from '@tensorflow/tfjs-core';
import { padOrCrop, convPadded, paddedForInputGrad, type Pad } from './convGeometry.ts';

// Depthwise convolution gradients for the wasm backend: the filter's as one depthwise convolution of x
// with dy (batch folded into the channels), the input's as a flipped depthwise convolution.

export function depthwiseFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: [number, number],
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filterShape;
    const [sh, sw] = strides;
    const [dh, dw] = dilations;
    const [n, oh, ow] = dy.shape;
    if (!(sh > 1 && dh > 1) && !(sw > 1 && dw > 1)) {
      // Per channel, a correlation of x with dy summed over the batch: one depthwise convolution of x
      // laid out as [1, H, W, N C] with dy as an [OH, OW, N C, M] filter (stride and dilation swap),
      // then a sum over N. Per-tap strided slices instead took 17-32x longer at stride 2 on wasm.
      const [, h, w] = x.shape;
      const xt = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c]) as tf.Tensor4D;
      const f = tf.reshape(tf.transpose(tf.reshape(dy, [n, oh, ow, c, m]), [1, 2, 0, 3, 4]), [oh, ow, n * c, m]) as tf.Tensor4D;
      const out = convPadded(xt, f, [dh, dw], pad.top, pad.bottom, pad.left, pad.right, [sh, sw], true); // [1, >=KH, >=KW, N C M]
      return tf.sum(tf.reshape(tf.slice(out, [0, 0, 0, 0], [1, kh, kw, n * c * m]), [kh, kw, n, c, m]), 2) as tf.Tensor4D;
    }
    const xp = padOrCrop(x, pad.top, pad.bottom, pad.left, pad.right);
    const dy5 = tf.reshape(dy, [n, oh, ow, c, m]);
    const taps: tf.Tensor[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const xs = tf.reshape(
          tf.stridedSlice(xp, [0, a * dh, b * dw, 0], [n, a * dh + (oh - 1) * sh + 1, b * dw + (ow - 1) * sw + 1, c], [1, sh, sw, 1]),
          [n, oh, ow, c, 1],
        );
        taps.push(tf.sum(tf.mul(xs, dy5), [0, 1, 2])); // [C, M]
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, c, m]) as tf.Tensor4D;
  });
}

export function depthwiseInputGrad(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: [number, number],
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    const c = xShape[3];
    const [kh, kw, , m] = filter.shape;
    const padded = paddedForInputGrad(xShape[1], xShape[2], dy, kh, kw, strides, pad, dilations);
    const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
    let total: tf.Tensor4D | undefined;
    for (let j = 0; j < m; j++) {
      // Channel multiplier j: dy channels c*m + j against filter [:, :, c, j].
      const [pn, ph, pw] = padded.shape;
      const dyj =
        m === 1
          ? padded
          : (tf.reshape(tf.slice(tf.reshape(padded, [pn, ph, pw, c, m]), [0, 0, 0, 0, j], [pn, ph, pw, c, 1]), [
              pn,
              ph,
              pw,
              c,
            ]) as tf.Tensor4D);
      const fj = tf.slice(flipped, [0, 0, 0, j], [kh, kw, c, 1]) as tf.Tensor4D;
      const part = tf.depthwiseConv2d(dyj, fj, 1, 'valid', 'NHWC', dilations);
      total = total ? (tf.add(total, part) as tf.Tensor4D) : part;
    }
    return total!;
  });
}
