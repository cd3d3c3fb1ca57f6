import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { TileBatch } from '../core/index.ts';
import type { TrainConfig } from './config.ts';
import { headLoss } from './heads.ts';
import { batchTensor } from './predictor.ts';
import type { PatternTargets } from './patternTargets.ts';

/** One optimisation step's inputs: a batch (or a replica's shard of one) and its labels. */
export interface StepBatch {
  x: TileBatch;
  labels: Int32Array;
  /** Breast multitask components (-1 where unknown). */
  extra?: Int32Array[];
  /** A pattern head's targets. */
  patterns?: PatternTargets;
}

export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
}

export function makeOptimizer(config: TrainConfig): tf.Optimizer {
  const t = config.train;
  return t.optimizer === 'adamw' ? tf.train.adam(t.lr) : tf.train.momentum(t.lr, t.momentum);
}

/**
 * The mean loss of a batch and its gradients with respect to `vars`, in their order. The caller owns
 * the returned tensors.
 */
export function lossAndGradients(
  model: tfl.LayersModel,
  vars: tf.Variable[],
  batch: StepBatch,
  config: TrainConfig,
  k: number,
): { loss: number; grads: tf.Tensor[] } {
  let loss = NaN;
  const grads = tf.tidy(() => {
    const x = batchTensor(batch.x, config.model.inputSize);
    const { value, grads: byName } = tf.variableGrads(
      () =>
        headLoss(
          model.apply(x, { training: true }) as tf.Tensor2D,
          config.model.head,
          k,
          batch.labels,
          config.train.labelSmoothing,
          batch.extra,
          batch.patterns,
        ),
      vars,
    );
    loss = value.dataSync()[0];
    return vars.map((v) => byName[v.name]);
  });
  return { loss, grads };
}

/**
 * Applies one update from the batch gradient: clipping by global norm, the optimizer (Adam or SGD with
 * momentum at learning rate lr), then decoupled weight decay (AdamW / SGDW) on kernels only, not on
 * batch-norm parameters or biases. Every replica runs it on the same summed gradient, so their weights
 * stay identical.
 */
export function applyGradients(optimizer: tf.Optimizer, vars: tf.Variable[], grads: tf.Tensor[], lr: number, config: TrainConfig): void {
  const t = config.train;
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
  tf.tidy(() => {
    let g = grads;
    if (t.gradClip) {
      const norm = tf.sqrt(tf.addN(grads.map((v) => tf.sum(tf.square(v)))));
      const scale = tf.minimum(1, tf.div(t.gradClip, tf.maximum(norm, 1e-12)));
      g = grads.map((v) => tf.mul(v, scale));
    }
    optimizer.applyGradients(
      Object.fromEntries(vars.map((v, i) => [v.name, g[i]])) as unknown as Parameters<typeof optimizer.applyGradients>[0],
    );
    if (t.weightDecay > 0) {
      for (const v of vars) if (/kernel|depthwise/.test(v.name)) v.assign(tf.mul(v, 1 - lr * t.weightDecay));
    }
  });
}
