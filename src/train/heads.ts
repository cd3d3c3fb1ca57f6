import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError, PATTERN_CLASSES, PATTERN_ISUP } from '../core/index.ts';
import type { PatternTargets } from './patternTargets.ts';

export type HeadName = 'softmax' | 'ordinal' | 'multitask' | 'patterns';

/**
 * CORAL's rank-consistent output (Cao, Mirjalili & Raschka 2020): one shared weight vector and K-1
 * ordered biases, logit_k = w.h + b_k, so P(y > k) falls with k. Takes the [B, 1] projection.
 */
export class CoralBias extends tfl.layers.Layer {
  static className = 'CoralBias';
  private bias!: tfl.LayerVariable;
  readonly thresholds: number;

  constructor(config: { thresholds: number; name?: string }) {
    super(config);
    this.thresholds = config.thresholds;
  }

  override build(): void {
    this.bias = this.addWeight('bias', [this.thresholds], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [inputShape[0], this.thresholds];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.add(x, this.bias.read());
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), thresholds: this.thresholds };
  }
}
tf.serialization.registerClass(CoralBias);

/** The breast multi-task head: grade and the three Nottingham components, 3 classes each. */
export const MULTITASK_OUTPUTS = ['grade', 'tubules', 'pleomorphism', 'mitoses'] as const;

export function buildHead(features: tfl.SymbolicTensor, head: HeadName, k: number, seed: number): tfl.SymbolicTensor {
  const init = () => tfl.initializers.glorotUniform({ seed: seed * 7919 + 17 });
  if (head === 'softmax')
    return tfl.layers.dense({ units: k, kernelInitializer: init(), name: 'head_logits' }).apply(features) as tfl.SymbolicTensor;
  if (head === 'ordinal') {
    const proj = tfl.layers
      .dense({ units: 1, useBias: false, kernelInitializer: init(), name: 'head_projection' })
      .apply(features) as tfl.SymbolicTensor;
    return new CoralBias({ thresholds: k - 1, name: 'head_coral' }).apply(proj) as tfl.SymbolicTensor;
  }
  if (head === 'multitask') {
    if (k !== 3) throw new ConfigError('the multitask head is for breast grading (3 classes)');
    return tfl.layers.dense({ units: 12, kernelInitializer: init(), name: 'head_multitask' }).apply(features) as tfl.SymbolicTensor;
  }
  if (head === 'patterns') {
    if (k !== 6) throw new ConfigError('the patterns head is for prostate grading (Gleason patterns, ISUP 0-5)');
    return tfl.layers
      .dense({ units: PATTERN_CLASSES.length, kernelInitializer: init(), name: 'head_patterns' })
      .apply(features) as tfl.SymbolicTensor;
  }
  throw new ConfigError(`unknown head "${head}" (softmax, ordinal, multitask, patterns)`);
}

/** Class probabilities [B, K] from a head's raw outputs. */
export function headProbabilities(out: tf.Tensor2D, head: HeadName, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (head === 'softmax') return tf.softmax(out);
    if (head === 'patterns') return tf.matMul(tf.softmax(out), patternPlacement(k)) as tf.Tensor2D;
    if (head === 'multitask') return tf.softmax(tf.slice(out, [0, 0], [out.shape[0], 3])) as tf.Tensor2D;
    // Ordinal: P(y > k) by sigmoid; P(y = k) as consecutive differences, clipped for monotonicity.
    const gt = tf.sigmoid(out);
    const n = out.shape[0];
    const ones = tf.ones([n, 1]);
    const zeros = tf.zeros([n, 1]);
    const upper = tf.concat([ones, gt], 1);
    const lower = tf.concat([gt, zeros], 1);
    const p = tf.relu(tf.sub(upper, lower));
    return tf.div(p, tf.maximum(tf.sum(p, 1, true), 1e-7)) as tf.Tensor2D;
  });
}

/** [4, K]: moves pattern probabilities into their ISUP classes (PATTERN_ISUP). */
function patternPlacement(k: number): tf.Tensor2D {
  const m = new Float32Array(PATTERN_ISUP.length * k);
  PATTERN_ISUP.forEach((c, i) => (m[i * k + c] = 1));
  return tf.tensor2d(m, [PATTERN_ISUP.length, k]);
}

/**
 * A pattern head's loss: -sum_g w_g log(sum_{c in g} p_c), averaged over tiles (patternTargets). Each
 * group's log-probability is a log-sum-exp of the log-softmax over its members (non-members at -1e4).
 */
function patternLoss(out: tf.Tensor2D, targets: PatternTargets): tf.Scalar {
  const p = PATTERN_CLASSES.length;
  const n = out.shape[0];
  const logp = tf.reshape(tf.logSoftmax(out), [n, 1, p]);
  const excluded = tf.mul(tf.sub(1, tf.tensor3d(targets.members, [n, p, p])), -1e4);
  const groupLogp = tf.logSumExp(tf.add(logp, excluded), 2);
  return tf.neg(tf.div(tf.sum(tf.mul(groupLogp, tf.tensor2d(targets.weights, [n, p]))), n)) as tf.Scalar;
}

/**
 * The training loss of a head. `labels` are class indices [B]; `extra` carries the breast components
 * (-1 where unknown). Softmax: cross-entropy with label smoothing. Ordinal: CORAL's summed binary
 * cross-entropy over the K-1 thresholds. Patterns: `patterns`' groups (label smoothing does not apply: the
 * masks' shares are soft already). Not wrapped in tidy: it runs inside variableGrads, and ops with
 * custom gradients (logSigmoid) keep references to intermediates that a tidy here would free.
 */
export function headLoss(
  out: tf.Tensor2D,
  head: HeadName,
  k: number,
  labels: Int32Array,
  smoothing: number,
  extra?: Int32Array[],
  patterns?: PatternTargets,
): tf.Scalar {
  return (() => {
    if (head === 'patterns') {
      if (!patterns) throw new Error('a pattern head trains on pattern targets');
      return patternLoss(out, patterns);
    }
    const y = tf.tensor1d(labels, 'int32');
    // Per-row cross-entropy; rows with label -1 (unknown) weigh nothing.
    const ceRows = (logits: tf.Tensor2D, yy: Int32Array, classes: number) => {
      const oneHot = tf.cast(
        tf.oneHot(
          tf.tensor1d(
            Int32Array.from(yy, (v) => Math.max(0, v)),
            'int32',
          ),
          classes,
        ),
        'float32',
      );
      const target = smoothing > 0 ? tf.add(tf.mul(oneHot, 1 - smoothing), smoothing / classes) : oneHot;
      return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1));
    };
    const ce = (logits: tf.Tensor2D, yy: Int32Array, classes: number) => {
      const mask = tf.tensor1d(Float32Array.from(yy, (v) => (v >= 0 ? 1 : 0)));
      const count = yy.reduce((a, v) => a + (v >= 0 ? 1 : 0), 0);
      return count ? tf.div(tf.sum(tf.mul(ceRows(logits, yy, classes), mask)), count) : tf.scalar(0);
    };
    if (head === 'softmax') return ce(out, labels, k) as tf.Scalar;
    if (head === 'multitask') {
      let loss = ce(tf.slice(out, [0, 0], [out.shape[0], 3]) as tf.Tensor2D, labels, 3);
      (extra ?? []).forEach((comp, i) => {
        // Components weigh a third each: the grade stays the main objective.
        loss = tf.add(loss, tf.mul(ce(tf.slice(out, [0, 3 * (i + 1)], [out.shape[0], 3]) as tf.Tensor2D, comp, 3), 1 / 3));
      });
      return loss as tf.Scalar;
    }
    // CORAL targets: 1 for every threshold below the label.
    const thresholds = tf.reshape(tf.range(0, k - 1, 1, 'int32'), [1, k - 1]);
    const target = tf.cast(tf.less(thresholds, tf.reshape(y, [-1, 1])), 'float32');
    // log sigmoid(z) = -softplus(-z): tfjs's logSigmoid has a custom gradient that keeps an unsaved
    // reference to its input, which breaks on intermediates inside variableGrads.
    const bce = tf.add(tf.mul(target, tf.neg(tf.softplus(tf.neg(out)))), tf.mul(tf.sub(1, target), tf.neg(tf.softplus(out))));
    return tf.mean(tf.neg(tf.sum(bce, 1))) as tf.Scalar;
  })();
}
