import { imagesToBatch } from '../core/index.ts';
import { gradeLogits, type SuiteScorer } from '../eval/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { openModel } from './openModel.ts';
import { aggregateScores, hasOodBundle, imagesQuality, loadOodBundle, needsQuality } from '../ood/index.ts';
import type { RgbImage } from '../core/index.ts';

/** A model with its primary OOD detector, scoring 8-bit tiles: what robustness suites and heatmaps need. */
export interface ModelScorer extends SuiteScorer {
  score(images: readonly RgbImage[]): Promise<{ probs: Float32Array; features: Float32Array; oodScores?: Float64Array }>;
  /** The primary detector's tile threshold (accepting 95% of in-distribution validation tiles). */
  tileThreshold?: number;
  /** One slide's aggregated OOD score (top-k tile mean) and whether it passes the slide threshold. */
  slideOod?(tileScores: Float64Array): { score: number; flag: boolean };
  dispose(): Promise<void> | void;
}

export async function modelScorer(modelDir: string, options: ModelOpenOptions = {}): Promise<ModelScorer> {
  const ood = hasOodBundle(modelDir) ? loadOodBundle(modelDir) : undefined;
  const model = await openModel(modelDir, options);
  const detector = ood?.detectors.get(ood.bundle.primary);
  const stored = ood?.bundle.detectors.find((d) => d.name === ood.bundle.primary);
  return {
    classes: model.meta.classes,
    head: model.meta.head,
    grading: model.meta.patternGrading,
    async score(images) {
      const r = model.runImages ? await model.runImages(images) : await model.run(imagesToBatch(images));
      if (!detector) return { probs: r.probs, features: r.features };
      const n = images.length;
      const quality = needsQuality([ood!.bundle.primary]) ? imagesQuality(images) : undefined;
      const { k, logits } = gradeLogits(r.logits, n, model.meta.head);
      const oodScores = detector.score({ n, k, d: r.features.length / n, logits, features: r.features, quality });
      return { probs: r.probs, features: r.features, oodScores };
    },
    slideOodFlags: stored
      ? (tiles, scores) => {
          const agg = aggregateScores(
            scores,
            tiles.map((t) => t.slideId),
            'topk',
            { k: ood!.bundle.aggregation.k },
          );
          return new Map([...agg.entries()].map(([s, v]) => [s, v > stored.slideThreshold]));
        }
      : undefined,
    tileThreshold: stored?.threshold,
    slideOod: stored
      ? (scores) => {
          const score =
            aggregateScores(scores, Array(scores.length).fill('slide'), 'topk', { k: ood!.bundle.aggregation.k }).get('slide') ?? NaN;
          return { score, flag: score > stored.slideThreshold };
        }
      : undefined,
    dispose: () => model.dispose(),
  };
}
