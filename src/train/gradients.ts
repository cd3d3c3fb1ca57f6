import * as tf from '@tensorflow/tfjs-core';

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
function reduceTo(t: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, t.shape);
  const summed = axes.length ? tf.sum(t, axes, true) : t;
  return tf.reshape(summed, shape);
}

let registered = false;

/**
 * tfjs's FusedBatchNorm gradient materialises the per-channel mean, variance and scale at the full
 * input size with Tile before multiplying; on wasm that was the single most expensive kernel of a
 * ResNet training step (a third of it). This gradient uses broadcasting instead, and shares the
 * per-channel sums between inputs; same formulas: y = (x - m) r g + b, r = (v + eps)^-1/2.
 */
export function registerBatchNormGradient(): void {
  if (registered) return;
  registered = true;
  const original = tf.getGradient('FusedBatchNorm');
  tf.registerGradient({
    kernelName: 'FusedBatchNorm',
    inputsToSave: original?.inputsToSave ?? ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const { varianceEpsilon } = attrs as { varianceEpsilon: number };
      const [x, mean, variance, scale] = saved as tf.Tensor[];
      const g = scale ?? tf.scalar(1);
      const r = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
      const d = dy as tf.Tensor;
      // The two per-channel sums that the mean, variance, scale and offset gradients share, each
      // computed once (with batch statistics all five gradients are wanted). Eager, because the tape
      // asks for each input's gradient in a tidy of its own; only these small sums outlive it.
      const sumD = reduceTo(d, mean.shape);
      const sumDXc = tf.tidy(() => reduceTo(tf.mul(d, tf.sub(x, mean)), mean.shape));
      const perChannel = (t: tf.Tensor, shape: number[]) =>
        tf.util.sizeFromShape(shape) === t.size ? tf.reshape(t, shape) : reduceTo(t, shape);
      return {
        x: () => tf.mul(d, tf.mul(r, g)),
        mean: () => perChannel(tf.neg(tf.mul(sumD, tf.mul(r, g))), mean.shape),
        variance: () => perChannel(tf.mul(sumDXc, tf.mul(g, tf.mul(tf.pow(r, 3), -0.5))), variance.shape),
        scale: () => perChannel(tf.mul(sumDXc, r), (scale ?? tf.scalar(1)).shape),
        offset: () => perChannel(sumD, mean.shape),
      };
    },
  });
}
