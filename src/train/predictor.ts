import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Predictor, TileBatch } from '../core/index.ts';
import { headProbabilities, type HeadName } from './heads.ts';
import { foldBatchNorm } from './fold.ts';
import { loadLayersModel, readModelMeta, type ModelMeta } from './modelDir.ts';

/** Batch to model input: NHWC float in [0,1], resized to the model's input size. */
export function batchTensor(batch: TileBatch, inputSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    const x = tf.tensor4d(batch.data, [batch.n, batch.height, batch.width, 3]);
    return batch.height === inputSize && batch.width === inputSize ? x : tf.image.resizeBilinear(x, [inputSize, inputSize], true);
  });
}

/**
 * A trained model behind the Predictor interface: class probabilities, penultimate features
 * (the "features" layer) and raw logits, computed in one pass.
 */
export class ModelPredictor implements Predictor {
  private readonly both: tfl.LayersModel;

  /**
   * With fold (a model that will not train again) the predictor runs a copy with batch norms folded
   * into the convolutions (see fold.ts); without, it runs the model as it is, as validation during
   * training must.
   */
  constructor(readonly model: tfl.LayersModel, readonly meta: Pick<ModelMeta, 'head' | 'classes' | 'inputSize'> & Partial<ModelMeta>, options: { fold?: boolean } = {}) {
    const both = tfl.model({ inputs: model.inputs, outputs: [model.getLayer('features').output as tfl.SymbolicTensor, model.outputs[0]] });
    this.both = options.fold ? foldBatchNorm(both) : both;
    this.folded = this.both !== both;
  }

  private readonly folded: boolean;

  static async load(dir: string): Promise<ModelPredictor> {
    const meta = readModelMeta(dir);
    return new ModelPredictor(await loadLayersModel(dir), meta, { fold: true });
  }

  get k(): number {
    return this.meta.classes.length;
  }

  async run(batch: TileBatch): Promise<{ probs: Float32Array; features: Float32Array; logits: Float32Array }> {
    const [features, out, probs] = tf.tidy(() => {
      const x = batchTensor(batch, this.meta.inputSize);
      const [f, o] = this.both.predict(x) as tf.Tensor[];
      return [f, o, headProbabilities(o as tf.Tensor2D, this.meta.head as HeadName, this.k)];
    });
    const result = { probs: (await probs.data()) as Float32Array, features: (await features.data()) as Float32Array, logits: (await out.data()) as Float32Array };
    tf.dispose([features, out, probs]);
    return result;
  }

  async predict(batch: TileBatch): Promise<Float32Array> {
    return (await this.run(batch)).probs;
  }

  async embed(batch: TileBatch): Promise<Float32Array> {
    return (await this.run(batch)).features;
  }

  dispose(): void {
    // A folded copy applied the model's other layers again (a second reference each): release it
    // first, so that the model's own dispose frees those layers' weights.
    if (this.folded) this.both.dispose();
    this.model.dispose();
  }
}
