import {
  logitTemperature,
  applyAffineHead,
  headProbabilities,
  log,
  readAffineHead,
  silentProgress,
  type ModelPredictor,
  type ProgressFactory,
} from '../core/index.ts';
import { EmbeddingCache, openImportedFeatures, type TileDataset, type TileRow } from '../data/index.ts';
import { predictTiles, type TilePredictions } from '../data/index.ts';

/**
 * A model's outputs on dataset tiles. A head on a frozen encoder whose embeddings of these tiles are
 * cached (gradelab features) reads them from the cache and applies its head (the encoder, nearly all of
 * the work, does not run again); otherwise the model runs through its engine with a progress bar.
 */
export async function modelOutputs(
  model: ModelPredictor,
  modelDir: string,
  ds: TileDataset,
  tiles: TileRow[],
  options: { label: string; keepFeatures?: boolean; progress?: ProgressFactory },
): Promise<TilePredictions> {
  const enc = model.meta.encoder;
  const imported = model.meta.importedFeatures;
  // A head on imported features has nothing else to read: a dataset without them is refused in one line.
  const cache = imported ? openImportedFeatures(ds, imported) : enc ? EmbeddingCache.open(ds, enc) : undefined;
  if (cache && (imported || (cache.dim === model.meta.featureDim && !cache.missing(tiles).length))) {
    const features = cache.read(tiles);
    const logits = applyAffineHead(readAffineHead(modelDir), features, tiles.length);
    log.info(`${options.label}: ${tiles.length} tiles from the embedding cache (${cache.dir})`);
    return {
      tiles,
      k: model.k,
      probs: headProbabilities(logits, tiles.length, model.meta.head, model.k, logitTemperature(model.meta)),
      head: model.meta.head,
      grading: model.meta.patternGrading,
      features,
      featureDim: cache.dim,
      logits,
    };
  }
  const progress = (options.progress ?? silentProgress)('tiles');
  progress.start(tiles.length, options.label);
  let last = 0;
  try {
    return await predictTiles(model, ds, tiles, {
      batchSize: 64,
      keepFeatures: options.keepFeatures,
      onBatch: (done) => {
        progress.increment(done - last);
        last = done;
      },
    });
  } finally {
    progress.stop();
  }
}
