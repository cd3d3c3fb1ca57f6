import type { HeadKind } from '../core/index.ts';
import { aggregateScores, hasOodBundle, loadOodBundle, needsQuality, type FeatureSet } from '../ood/index.ts';
import { classIndex } from '../metrics/index.ts';
import type { TilePredictions } from '../data/index.ts';

/** The grade's logits of n tiles: all of them, or the first three of the breast multitask head's 4 x 3. */
export function gradeLogits(all: Float32Array, n: number, head: HeadKind): { k: number; logits: Float32Array } {
  const width = all.length / n;
  const k = head === 'multitask' ? 3 : width;
  return { k, logits: k === width ? all : Float32Array.from({ length: n * k }, (_, i) => all[Math.floor(i / k) * width + (i % k)]) };
}

/**
 * What detectors see of tiles: features, the grade's logits (for the breast multitask head, the first
 * three of its 4 x 3 outputs, not the components' logits), class labels and quality features.
 */
export function featureSet(p: TilePredictions, classes: number[], quality?: Float32Array): FeatureSet {
  const n = p.tiles.length;
  const { k, logits } = gradeLogits(p.logits!, n, p.head);
  return {
    n,
    k,
    d: p.featureDim,
    logits,
    features: p.features!,
    labels: Int32Array.from(p.tiles, (t) => classIndex(t.grade, classes) ?? 0),
    quality,
  };
}

/** The model's primary OOD detector applied to tiles: tile and slide scores, and the flags at its thresholds. */
export interface OodScores {
  detector: string;
  tile: Float64Array;
  tileFlags: boolean[];
  slide: Map<string, number>;
  slideFlags: Map<string, boolean>;
}

/**
 * Scores tiles (predicted with features and logits) with the model directory's primary detector and
 * aggregates them per slide (top-k mean) as the detector was calibrated: the one way predict, heatmaps
 * of datasets and audits flag slides. Undefined when the model has no fitted detectors.
 * `quality` is asked for only when the detector needs pixel-quality features. Callers that check inputs
 * before work pass the bundle they already loaded.
 */
export async function scoreWithPrimaryDetector(
  modelDir: string,
  p: TilePredictions,
  classes: number[],
  quality: () => Promise<Float32Array>,
  loaded: ReturnType<typeof loadOodBundle> | undefined = hasOodBundle(modelDir) ? loadOodBundle(modelDir) : undefined,
): Promise<OodScores | undefined> {
  if (!loaded) return undefined;
  const { bundle, detectors } = loaded;
  const stored = bundle.detectors.find((d) => d.name === bundle.primary)!;
  const q = needsQuality([bundle.primary]) ? await quality() : undefined;
  const tile = detectors.get(bundle.primary)!.score(featureSet(p, classes, q));
  const slide = aggregateScores(
    tile,
    p.tiles.map((t) => t.slideId),
    'topk',
    { k: bundle.aggregation.k },
  );
  return {
    detector: bundle.primary,
    tile,
    tileFlags: Array.from(tile, (s) => s > stored.threshold),
    slide,
    slideFlags: new Map([...slide].map(([id, s]) => [id, s > stored.slideThreshold])),
  };
}
