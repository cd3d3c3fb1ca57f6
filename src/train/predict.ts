import { TileLoader, type TileDataset, type TileRow } from '../data/index.ts';
import type { ModelPredictor } from './predictor.ts';

export interface TilePredictions {
  tiles: TileRow[];
  k: number;
  probs: Float32Array;
  features?: Float32Array;
  featureDim: number;
  logits?: Float32Array;
}

/** Runs a model over tiles in order (no augmentation), optionally keeping features and logits. */
export async function predictTiles(model: ModelPredictor, ds: TileDataset, tiles: TileRow[], options: { batchSize?: number; keepFeatures?: boolean; onBatch?: (done: number, total: number) => void } = {}): Promise<TilePredictions> {
  const k = model.k;
  const loader = new TileLoader(ds, tiles, { batchSize: options.batchSize ?? 64, seed: 0, shuffle: false, workers: 0 });
  const probs = new Float32Array(tiles.length * k);
  const logitsOut: number[] = [];
  const feats: Float32Array[] = [];
  let featureDim = 0;
  let done = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const r = await model.run(batch.x);
      probs.set(r.probs, done * k);
      if (options.keepFeatures) {
        feats.push(r.features);
        featureDim = r.features.length / batch.x.n;
        for (const v of r.logits) logitsOut.push(v);
      }
      done += batch.x.n;
      options.onBatch?.(done, tiles.length);
    }
  } finally {
    await loader.close();
  }
  let features: Float32Array | undefined;
  if (options.keepFeatures) {
    features = new Float32Array(tiles.length * featureDim);
    let o = 0;
    for (const f of feats) {
      features.set(f, o);
      o += f.length;
    }
  }
  return { tiles, k, probs, features, featureDim, logits: options.keepFeatures ? Float32Array.from(logitsOut) : undefined };
}

export { classIndex, poolSlides, tileRows, type SlidePooling } from '../eval/pooling.ts';
