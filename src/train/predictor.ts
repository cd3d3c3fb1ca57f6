import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  logitTemperature,
  headProbabilities as scaledProbabilities,
  readModelMeta,
  type ModelPredictor,
  type PredictorMeta,
  type TileBatch,
  type TileOutputs,
} from '../core/index.ts';
import { headProbabilities } from './heads.ts';
import { foldBatchNorm } from './fold.ts';
import { loadLayersModel } from './modelDir.ts';

/** Batch to model input: NHWC float in [0,1], resized to the model's input size. */
export function batchTensor(batch: TileBatch, inputSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    const x = tf.tensor4d(batch.data, [batch.n, batch.height, batch.width, 3]);
    return batch.height === inputSize && batch.width === inputSize ? x : tf.image.resizeBilinear(x, [inputSize, inputSize], true);
  });
}

/**
 * A trained model on TensorFlow.js behind the Predictor interface: class probabilities, penultimate
 * features (the "features" layer) and raw logits, computed in one pass. Validation during training uses
 * it; inference elsewhere runs model.onnx through src/engine unless asked for this engine.
 */
export class TfjsPredictor implements ModelPredictor {
  private readonly both: tfl.LayersModel;

  /**
   * With fold (a model that will not train again) the predictor runs a copy with batch norms folded
   * into the convolutions (see fold.ts); without, it runs the model as it is, as validation during
   * training must.
   */
  constructor(
    readonly model: tfl.LayersModel,
    readonly meta: PredictorMeta,
    options: { fold?: boolean } = {},
  ) {
    const both = tfl.model({
      inputs: model.inputs,
      outputs: [model.getLayer('features').getOutputAt(0) as tfl.SymbolicTensor, model.outputs[0]],
    });
    this.both = options.fold ? foldBatchNorm(both) : both;
    this.folded = this.both !== both;
  }

  private readonly folded: boolean;

  static async load(dir: string): Promise<TfjsPredictor> {
    const meta = readModelMeta(dir);
    return new TfjsPredictor(await loadLayersModel(dir), meta, { fold: true });
  }

  get engine(): string {
    return `tfjs (${tf.getBackend()}${this.folded ? ', batch norms folded' : ''})`;
  }

  get k(): number {
    return this.meta.classes.length;
  }

  async run(batch: TileBatch): Promise<TileOutputs> {
    const [features, out, probs] = tf.tidy(() => {
      const x = batchTensor(batch, this.meta.inputSize);
      const [f, o] = this.both.predict(x) as tf.Tensor[];
      return [f, o, headProbabilities(o as tf.Tensor2D, this.meta.head, this.k)];
    });
    const result = {
      probs: (await probs.data()) as Float32Array,
      features: (await features.data()) as Float32Array,
      logits: (await out.data()) as Float32Array,
    };
    tf.dispose([features, out, probs]);
    // A calibrated model's probabilities from its scaled logits, by the same arithmetic as ONNX Runtime's path.
    const t = logitTemperature(this.meta);
    if (t !== 1) result.probs = scaledProbabilities(result.logits, batch.n, this.meta.head, this.k, t);
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
