import { ConfigError, log, modelFile } from '../core/index.ts';
import { loadSplit, openDatasetForModel, tilesOfPartition } from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { classIndex, poolSlides, quadraticWeightedKappa, slideGrade } from '../metrics/index.ts';
import { modelOutputs } from './modelOutputs.ts';
import { openModel } from './openModel.ts';

export interface FitMilOptions {
  fold?: number;
  epochs?: number;
  seed?: number;
  /** Engine that computes the tile features; the head itself trains on TensorFlow.js (`engine.backend`). */
  engine?: ModelOpenOptions;
}

export interface MilFit {
  /** Validation slides the head was scored on. */
  valSlides: number;
  /** Slide QWK on validation: the attention head, and mean pooling of the same model's tiles. */
  attentionQwk: number;
  meanPoolingQwk: number;
  /** Where the head was saved (mil.json in the model directory). */
  path: string;
}

/**
 * Fits the attention-MIL slide head (Ilse et al. 2018) on a model's frozen tile features of the training
 * partition, saves it beside the model, and scores it against mean pooling on validation slides.
 */
export async function fitMil(modelDir: string, dataDir: string, options: FitMilOptions = {}): Promise<MilFit> {
  const { fold = 0, epochs = 40, seed = 1 } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new ConfigError(`--epochs must be a positive integer, got ${epochs}`);
  const ds = await openDatasetForModel(dataDir, modelDir);
  const split = await loadSplit(dataDir);
  const graded = (t: { anomaly: string; grade?: number }) => !t.anomaly && t.grade !== undefined;
  const train = tilesOfPartition(ds, split, 'train', fold).filter(graded);
  const val = tilesOfPartition(ds, split, 'val', fold).filter(graded);
  const model = await openModel(modelDir, options.engine);
  const classes = model.meta.classes;
  let tp, vp;
  try {
    tp = await modelOutputs(model, modelDir, ds, train, { label: 'MIL training tiles', keepFeatures: true });
    vp = await modelOutputs(model, modelDir, ds, val, { label: 'MIL validation tiles', keepFeatures: true });
  } finally {
    await model.dispose();
  }
  // The head trains on TensorFlow.js (a small model on the main thread), whatever ran the backbone.
  const { AttentionMil, bagsOf, saveMil, selectBackend } = await import('../train/index.ts');
  await selectBackend((options.engine?.backend ?? 'auto') as 'auto');
  const label = (g: number | undefined) => classIndex(g, classes);
  const mil = new AttentionMil(tp.featureDim, classes.length, 32, seed);
  mil.fit(bagsOf(train, tp.features!, tp.featureDim, label), {
    epochs,
    seed,
    onEpoch: (e, loss) => (e + 1) % 10 === 0 && log.info(`epoch ${e + 1}: loss ${loss.toFixed(3)}`),
  });
  const valBags = bagsOf(val, vp.features!, vp.featureDim, label);
  const y = valBags.map((b) => b.label!);
  const attention = valBags.map((b) => slideGrade(mil.predict(b).probs, 'softmax').pred);
  const meanBySlide = new Map(poolSlides(vp, classes, 'mean').map((r) => [r.slideId, r.pred]));
  await saveMil(modelDir, mil, epochs, seed);
  return {
    valSlides: valBags.length,
    attentionQwk: quadraticWeightedKappa(y, attention, classes.length),
    meanPoolingQwk: quadraticWeightedKappa(
      y,
      valBags.map((b) => meanBySlide.get(b.slideId)!),
      classes.length,
    ),
    path: modelFile(modelDir, 'mil'),
  };
}
