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
 * ResNet training step (a third of it). This gradient uses broadcasting instead; same formulas:
 * y = (x - m) r g + b, r = (v + eps)^-1/2.
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
      return {
        x: () => tf.mul(d, tf.mul(r, g)),
        mean: () => reduceTo(tf.neg(tf.mul(d, tf.mul(r, g))), mean.shape),
        variance: () => reduceTo(tf.mul(tf.mul(d, tf.sub(x, mean)), tf.mul(g, tf.mul(tf.pow(r, 3), -0.5))), variance.shape),
        scale: () => reduceTo(tf.mul(tf.mul(d, tf.sub(x, mean)), r), (scale ?? tf.scalar(1)).shape),
        offset: () => reduceTo(d, mean.shape),
      };
    },
  });
}
