/** A batch of tiles as a model sees them: Float32 NHWC in [0,1]. */
export interface TileBatch {
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly channels: 3;
  readonly data: Float32Array;
}

/** What evaluation, OOD and robustness code needs from a model; implemented in src/train. */
export interface Predictor {
  /** n x K class probabilities, row-major. */
  predict(batch: TileBatch): Promise<Float32Array>;
  /** n x d penultimate features, row-major. */
  embed?(batch: TileBatch): Promise<Float32Array>;
}
