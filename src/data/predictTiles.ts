import type { HeadKind, ModelPredictor, PatternGrading } from '../core/index.ts';
import { TileLoader } from './loader.ts';
import type { TileDataset, TileRow } from './tileDataset.ts';

export interface TilePredictions {
  tiles: TileRow[];
  k: number;
  probs: Float32Array;
  head: HeadKind;
  /** A pattern head's rule from areas to grade. */
  grading?: PatternGrading;
  features?: Float32Array;
  featureDim: number;
  logits?: Float32Array;
}

/** Runs a model over tiles in order (no augmentation), optionally keeping features and logits. */
export async function predictTiles(
  model: ModelPredictor,
  ds: TileDataset,
  tiles: TileRow[],
  options: { batchSize?: number; keepFeatures?: boolean; onBatch?: (done: number, total: number) => void } = {},
): Promise<TilePredictions> {
  const k = model.k;
  const loader = new TileLoader(ds, tiles, { batchSize: options.batchSize ?? 64, seed: 0, shuffle: false, workers: 0 });
  const probs = new Float32Array(tiles.length * k);
  let features: Float32Array | undefined;
  let logits: Float32Array | undefined;
  let featureDim = 0;
  let done = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const r = await model.run(batch.x);
      probs.set(r.probs, done * k);
      if (options.keepFeatures) {
        const n = batch.x.n;
        featureDim = r.features.length / n;
        features ??= new Float32Array(tiles.length * featureDim);
        logits ??= new Float32Array(tiles.length * (r.logits.length / n));
        features.set(r.features, done * featureDim);
        logits.set(r.logits, done * (r.logits.length / n));
      }
      done += batch.x.n;
      options.onBatch?.(done, tiles.length);
    }
  } finally {
    await loader.close();
  }
  return { tiles, k, probs, head: model.meta.head, grading: model.meta.patternGrading, features, featureDim, logits };
}
