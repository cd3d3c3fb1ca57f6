import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkFittedOn,
  ConfigError,
  createRng,
  type FittedOn,
  fittedOnOf,
  fittedOnSchema,
  groupBy,
  InputError,
  loadJsonFile,
  modelFile,
  readModelMeta,
  shuffled,
  writeFileAtomic,
} from '../core/index.ts';
import { z } from 'zod';

/**
 * Attention-based multiple-instance pooling (Ilse, Tomczak & Welling 2018, gated variant): a slide is a
 * bag of tile embeddings h_i; a_i = softmax_i(w . (tanh(V h_i) * sigmoid(U h_i))); the slide embedding
 * z = sum_i a_i h_i is classified by a linear layer. Trained from slide labels only, on the frozen
 * features of a tile model; the attention weights show which tiles decided the grade.
 */
export interface Bag {
  slideId: string;
  label?: number;
  /** n x d tile embeddings, row-major. */
  features: Float32Array;
  n: number;
}

export interface MilWeights {
  format: 'gradelab-mil/1';
  d: number;
  hidden: number;
  k: number;
  V: number[];
  U: number[];
  w: number[];
  Wc: number[];
  bc: number[];
  epochs: number;
  seed: number;
  /** The model whose features the head was trained on. */
  fittedOn?: FittedOn;
}

const milSchema = z.object({
  format: z.literal('gradelab-mil/1'),
  d: z.number().int().positive(),
  hidden: z.number().int().positive(),
  k: z.number().int().min(2),
  V: z.array(z.number()),
  U: z.array(z.number()),
  w: z.array(z.number()),
  Wc: z.array(z.number()),
  bc: z.array(z.number()),
  epochs: z.number().int(),
  seed: z.number(),
  fittedOn: fittedOnSchema.optional(),
});

export class AttentionMil {
  private readonly vars: Record<'V' | 'U' | 'w' | 'Wc' | 'bc', tf.Variable>;

  constructor(
    readonly d: number,
    readonly k: number,
    readonly hidden = 32,
    seed = 1,
    weights?: MilWeights,
  ) {
    const rng = createRng(`mil-${seed}`);
    const init = (n: number, scale: number) => Float32Array.from({ length: n }, () => rng.normal() * scale);
    const t = (name: keyof MilWeights, shape: number[], scale: number) =>
      tf.variable(
        tf.tensor(
          weights
            ? Float32Array.from(weights[name] as number[])
            : init(
                shape.reduce((a, b) => a * b),
                scale,
              ),
          shape,
        ),
      );
    this.vars = {
      V: t('V', [d, hidden], Math.sqrt(1 / d)),
      U: t('U', [d, hidden], Math.sqrt(1 / d)),
      w: t('w', [hidden, 1], Math.sqrt(1 / hidden)),
      Wc: t('Wc', [d, k], Math.sqrt(1 / d)),
      bc: tf.variable(weights ? tf.tensor1d(weights.bc) : tf.zeros([k])),
    };
  }

  /** Class logits [1, K] and attention [n] of one bag. */
  forward(h: tf.Tensor2D): { logits: tf.Tensor2D; attention: tf.Tensor1D } {
    const { V, U, w, Wc, bc } = this.vars;
    const gate = tf.mul(tf.tanh(tf.matMul(h, V as tf.Tensor2D)), tf.sigmoid(tf.matMul(h, U as tf.Tensor2D)));
    const a = tf.softmax(tf.reshape(tf.matMul(gate, w as tf.Tensor2D), [1, -1])); // [1, n]
    const z = tf.matMul(a, h); // [1, d]
    return { logits: tf.add(tf.matMul(z, Wc as tf.Tensor2D), bc) as tf.Tensor2D, attention: tf.reshape(a, [-1]) as tf.Tensor1D };
  }

  fit(bags: Bag[], options: { epochs?: number; lr?: number; seed?: number; onEpoch?: (epoch: number, loss: number) => void } = {}): void {
    const labelled = bags.filter((b) => b.label !== undefined && b.n > 0);
    if (labelled.length < 2) throw new ConfigError('attention MIL needs at least two labelled slides');
    const opt = tf.train.adam(options.lr ?? 1e-3);
    const rng = createRng(`mil-order-${options.seed ?? 1}`);
    for (let e = 0; e < (options.epochs ?? 40); e++) {
      let total = 0;
      for (const bag of shuffled(labelled, rng.fork(e))) {
        const loss = tf.tidy(() => {
          const h = tf.tensor2d(bag.features, [bag.n, this.d]);
          const y = tf.oneHot(tf.tensor1d([bag.label!], 'int32'), this.k);
          const { value, grads } = tf.variableGrads(
            () => tf.mean(tf.neg(tf.sum(tf.mul(tf.cast(y, 'float32'), tf.logSoftmax(this.forward(h).logits)), 1))) as tf.Scalar,
            Object.values(this.vars),
          );
          opt.applyGradients(grads as never);
          return value.dataSync()[0];
        });
        total += loss;
      }
      options.onEpoch?.(e, total / labelled.length);
    }
    opt.dispose();
  }

  predict(bag: Bag): { probs: number[]; attention: Float32Array } {
    return tf.tidy(() => {
      const { logits, attention } = this.forward(tf.tensor2d(bag.features, [bag.n, this.d]));
      return { probs: Array.from(tf.softmax(logits).dataSync()), attention: attention.dataSync() as Float32Array };
    });
  }

  weights(epochs: number, seed: number): MilWeights {
    const get = (v: tf.Variable) => Array.from(v.dataSync());
    return {
      format: 'gradelab-mil/1',
      d: this.d,
      hidden: this.hidden,
      k: this.k,
      V: get(this.vars.V),
      U: get(this.vars.U),
      w: get(this.vars.w),
      Wc: get(this.vars.Wc),
      bc: get(this.vars.bc),
      epochs,
      seed,
    };
  }

  dispose(): void {
    tf.dispose(Object.values(this.vars));
  }
}

export async function saveMil(modelDir: string, mil: AttentionMil, epochs: number, seed: number): Promise<void> {
  await writeFileAtomic(
    modelFile(modelDir, 'mil'),
    JSON.stringify({ ...mil.weights(epochs, seed), fittedOn: fittedOnOf(readModelMeta(modelDir)) }),
  );
}

export function loadMil(modelDir: string): AttentionMil {
  const p = modelFile(modelDir, 'mil');
  if (!existsSync(p))
    throw new ConfigError(`${modelDir}: no attention-MIL head (run \`gradelab mil fit --model ${modelDir} --data DATASET\`)`);
  const w = loadJsonFile(p, milSchema, 'attention-MIL head') as MilWeights;
  checkFittedOn(p, w.fittedOn, readModelMeta(modelDir), `gradelab mil fit --model ${modelDir} --data DATASET`);
  if (w.V.length !== w.d * w.hidden || w.Wc.length !== w.d * w.k)
    throw new InputError(`${p}: weights do not match d ${w.d}, hidden ${w.hidden}, k ${w.k}`);
  return new AttentionMil(w.d, w.k, w.hidden, w.seed, w);
}

/** Groups tile features into one bag per slide. */
export function bagsOf(
  tiles: { slideId: string; grade?: number }[],
  features: Float32Array,
  d: number,
  label: (grade: number | undefined) => number | undefined,
): Bag[] {
  return [
    ...groupBy(
      tiles,
      (t) => t.slideId,
      (_, i) => i,
    ).entries(),
  ].map(([slideId, idx]) => {
    const f = new Float32Array(idx.length * d);
    idx.forEach((i, r) => f.set(features.subarray(i * d, (i + 1) * d), r * d));
    return { slideId, label: label(tiles[idx[0]].grade), features: f, n: idx.length };
  });
}
