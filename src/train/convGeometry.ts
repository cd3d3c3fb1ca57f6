import * as tf from '@tensorflow/tfjs-core';

// Padding, cropping and stride geometry shared by the convolution gradient kernels.

export type Pad = { top: number; bottom: number; left: number; right: number };

export function convInfo(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: unknown,
  dimRoundingMode: unknown,
  depthwise: boolean,
) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad as 'same',
    dimRoundingMode as 'floor',
    depthwise,
    'channelsLast',
  );
}

/** Inserts s-1 zeros between rows and columns (stride dilation of a gradient). */
function dilateSpatial(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  const expanded = tf.pad(tf.reshape(t, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.slice(tf.reshape(expanded, [n, h * sh, w * sw, c]), [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]) as tf.Tensor4D;
}

type Pads4 = [[number, number], [number, number], [number, number], [number, number]];

/** t with the negative spatial amounts cropped off, and the padding the positive ones still ask for. */
function cropNegative(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): { cropped: tf.Tensor4D; pads: Pads4 } {
  const [n, h, w, c] = t.shape;
  const cropped =
    top < 0 || bottom < 0 || left < 0 || right < 0
      ? (tf.slice(
          t,
          [0, Math.max(0, -top), Math.max(0, -left), 0],
          [n, h - Math.max(0, -top) - Math.max(0, -bottom), w - Math.max(0, -left) - Math.max(0, -right), c],
        ) as tf.Tensor4D)
      : t;
  return {
    cropped,
    pads: [
      [0, 0],
      [Math.max(0, top), Math.max(0, bottom)],
      [Math.max(0, left), Math.max(0, right)],
      [0, 0],
    ],
  };
}

/** Pads (or, for negative amounts, crops) the spatial dimensions. */
export function padOrCrop(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const { cropped, pads } = cropNegative(t, top, bottom, left, right);
  // Each copy costs as much as a small convolution: skip the ones that change nothing.
  return pads.some(([a, b]) => a || b) ? (tf.pad(cropped, pads) as tf.Tensor4D) : cropped;
}

/**
 * A convolution of t padded (or, for negative amounts, cropped) spatially: the padding goes to the
 * convolution itself (XNNPACK pads as it reads), since a separate pad copies the tensor at about the
 * cost of a small convolution.
 */
export function convPadded(
  t: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: [number, number],
  top: number,
  bottom: number,
  left: number,
  right: number,
  dilations: [number, number],
  depthwise = false,
): tf.Tensor4D {
  const { cropped, pads } = cropNegative(t, top, bottom, left, right);
  return depthwise
    ? tf.depthwiseConv2d(cropped, filter, strides, pads as never, 'NHWC', dilations)
    : tf.conv2d(cropped, filter, strides, pads, 'NHWC', dilations);
}

/**
 * How much to pad (negative: crop) a stride-1 dy so that a convolution with the flipped filter gives
 * back an input-sized gradient: padded height - effective kernel + 1 = input height.
 */
export function inputGradPadding(
  h: number,
  w: number,
  dyH: number,
  dyW: number,
  kh: number,
  kw: number,
  pad: Pad,
  dilations: [number, number],
): [number, number, number, number] {
  const ekh = (kh - 1) * dilations[0] + 1;
  const ekw = (kw - 1) * dilations[1] + 1;
  const top = ekh - 1 - pad.top;
  const left = ekw - 1 - pad.left;
  return [top, h + ekh - 1 - dyH - top, left, w + ekw - 1 - dyW - left];
}

/**
 * dy dilated by the stride and padded (or cropped) for a stride-1 convolution with the flipped filter
 * (the depthwise input gradient's route; see stridedInputGrad for why it is slow at stride 2).
 */
export function paddedForInputGrad(
  h: number,
  w: number,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  strides: [number, number],
  pad: Pad,
  dilations: [number, number],
): tf.Tensor4D {
  const dyd = dilateSpatial(dy, strides[0], strides[1]);
  return padOrCrop(dyd, ...inputGradPadding(h, w, dyd.shape[1], dyd.shape[2], kh, kw, pad, dilations));
}
