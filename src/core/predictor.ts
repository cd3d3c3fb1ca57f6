import type { RgbImage } from './image.ts';
import type { ModelMeta } from './modelMeta.ts';

/** A batch of tiles as a model sees them: Float32 NHWC in [0,1]. */
export interface TileBatch {
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly channels: 3;
  readonly data: Float32Array;
}

/** What evaluation, OOD and robustness code needs from a model; implemented in src/engine and src/train. */
export interface Predictor {
  /** n x K class probabilities, row-major. */
  predict(batch: TileBatch): Promise<Float32Array>;
  /** n x d penultimate features, row-major. */
  embed?(batch: TileBatch): Promise<Float32Array>;
}

/** Everything one forward pass gives, row-major: probabilities, penultimate features, raw head outputs. */
export interface TileOutputs {
  probs: Float32Array;
  features: Float32Array;
  logits: Float32Array;
}

/** What a predictor must know of its model: the head, the classes and the input size at least. */
export type PredictorMeta = Pick<ModelMeta, 'head' | 'classes' | 'inputSize'> & Partial<ModelMeta>;

/**
 * A trained grading model behind one inference engine (ONNX Runtime over model.onnx, or TensorFlow.js
 * over the LayersModel): the Predictor contract plus the one-pass outputs that OOD detectors, MIL heads
 * and audits need.
 */
export interface ModelPredictor extends Predictor {
  readonly meta: PredictorMeta;
  /** Number of classes. */
  readonly k: number;
  /** Which engine runs the model and how, for logs and run records (e.g. "onnx (cpu, 2 threads)"). */
  readonly engine: string;
  run(batch: TileBatch): Promise<TileOutputs>;
  /** The same from 8-bit images, where the engine can skip the float batch (robustness suites). */
  runImages?(images: readonly RgbImage[]): Promise<TileOutputs>;
  dispose(): Promise<void> | void;
}
