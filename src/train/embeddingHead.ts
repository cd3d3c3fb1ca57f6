import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  applyAffineHead,
  ConfigError,
  createRng,
  gradeClasses,
  headProbabilities,
  predictedClass,
  type AffineHead,
} from '../core/index.ts';
import type { TileRow } from '../data/index.ts';
import { classIndex, poolSlides, quadraticWeightedKappa } from '../metrics/index.ts';
import type { TrainConfig } from './config.ts';
import { buildHead, headLoss, MULTITASK_OUTPUTS } from './heads.ts';
import { scheduledLr } from './schedule.ts';
import { DEFAULT_PATTERN_GRADING } from './patternRule.ts';
import { patternTargets } from './patternTargets.ts';

export interface EmbeddingSet {
  tiles: TileRow[];
  /** n x dim, row-major. */
  features: Float32Array;
}

export interface HeadEpoch {
  epoch: number;
  trainLoss: number;
  valQwk: number | null;
  valTileQwk: number | null;
  best: boolean;
}

export interface HeadFitResult {
  head: AffineHead;
  history: HeadEpoch[];
  bestEpoch: number;
  bestQwk: number | null;
}

/** The trained head layers as one affine map (see core/affineHead.ts). */
function affineOf(model: tfl.LayersModel, config: TrainConfig, dim: number, k: number): AffineHead {
  const values = (name: string) =>
    model
      .getLayer(name)
      .getWeights()
      .map((w) => Float32Array.from(w.dataSync()));
  if (config.model.head === 'softmax') {
    const [weights, bias] = values('head_logits');
    return { dim, outputs: k, weights, bias };
  }
  if (config.model.head === 'multitask') {
    const [weights, bias] = values('head_multitask');
    return { dim, outputs: 12, weights, bias };
  }
  if (config.model.head === 'patterns') {
    const [weights, bias] = values('head_patterns');
    return { dim, outputs: bias.length, weights, bias };
  }
  // CORAL: one projection w shared by the K-1 thresholds, logit_j = w.h + b_j.
  const [w] = values('head_projection');
  const [b] = values('head_coral');
  const weights = new Float32Array(dim * (k - 1));
  for (let j = 0; j < dim; j++) weights.fill(w[j], j * (k - 1), (j + 1) * (k - 1));
  return { dim, outputs: k - 1, weights, bias: b };
}

const component = (tile: TileRow, c: string) => (tile.labels[c] ? Number(tile.labels[c]) - 1 : -1);

/**
 * Trains a grading head (softmax, CORAL, the breast multitask head or the Gleason pattern head, as train/heads.ts builds them) on
 * cached embeddings of a frozen encoder: seeded class-balanced minibatches, AdamW with warm-up and
 * cosine decay, slide-level validation QWK per epoch (mean-pooled tiles), best or last epoch kept.
 * Runs on the main thread in seconds: the encoder, nearly all of the work, ran once beforehand.
 */
export async function fitHeadOnEmbeddings(
  config: TrainConfig,
  train: EmbeddingSet,
  val: EmbeddingSet,
  dim: number,
  onEpoch?: (e: HeadEpoch) => void,
): Promise<HeadFitResult> {
  const classes = gradeClasses(config.task);
  const k = classes.length;
  const t = config.train;
  const input = tfl.input({ shape: [dim], name: 'embedding' });
  const model = tfl.model({ inputs: input, outputs: buildHead(input, config.model.head, k, config.seed) });
  const labels = Int32Array.from(train.tiles, (tile) => classIndex(tile.grade, classes)!);
  if (labels.some((l) => l === undefined || l < 0)) throw new ConfigError('every training tile needs a grade');
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const n = train.tiles.length;
  const batch = Math.min(t.batchSize, n);
  const steps = Math.max(1, Math.floor((t.tilesPerEpoch ?? n) / batch));
  const optimizer = t.optimizer === 'adamw' ? tf.train.adam(t.lr) : tf.train.momentum(t.lr, t.momentum);
  const rng = createRng(`${config.seed}/head`);
  // Class-balanced draws: cumulative weights 1 / count of the tile's class.
  const cumulative = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) cumulative[i] = acc += t.classBalanced ? 1 / counts.get(labels[i])! : 1;
  const draw = () => {
    const r = rng.next() * acc;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const history: HeadEpoch[] = [];
  let best: { epoch: number; qwk: number | null; head: AffineHead } | undefined;
  let sinceBest = 0;
  let step = 0;
  try {
    for (let epoch = 0; epoch < t.epochs; epoch++) {
      let lossSum = 0;
      for (let s = 0; s < steps; s++) {
        const idx = Array.from({ length: batch }, draw);
        const lr = scheduledLr(t.lr, step++, Math.round(t.warmupEpochs * steps), steps * t.epochs);
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        const x = new Float32Array(batch * dim);
        idx.forEach((i, b) => x.set(train.features.subarray(i * dim, (i + 1) * dim), b * dim));
        const y = Int32Array.from(idx, (i) => labels[i]);
        const extra =
          config.model.head === 'multitask'
            ? MULTITASK_OUTPUTS.slice(1).map((c) => Int32Array.from(idx, (i) => component(train.tiles[i], c)))
            : undefined;
        const patterns = config.model.head === 'patterns' ? patternTargets(idx.map((i) => train.tiles[i])) : undefined;
        lossSum += tf.tidy(() => {
          const xt = tf.tensor2d(x, [batch, dim]);
          const { value, grads } = tf.variableGrads(
            () => headLoss(model.apply(xt, { training: true }) as tf.Tensor2D, config.model.head, k, y, t.labelSmoothing, extra, patterns),
            vars,
          );
          optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
          if (t.weightDecay > 0) for (const v of vars) if (/kernel/.test(v.name)) v.assign(tf.mul(v, 1 - lr * t.weightDecay));
          return value.dataSync()[0];
        });
      }
      const head = affineOf(model, config, dim, k);
      const { slideQwk, tileQwk } = validate(head, config, val, classes);
      const improved = !best || t.select === 'last' || (slideQwk ?? -Infinity) > (best.qwk ?? -Infinity);
      if (improved) {
        best = { epoch, qwk: slideQwk, head };
        sinceBest = 0;
      } else sinceBest++;
      const e: HeadEpoch = { epoch, trainLoss: lossSum / steps, valQwk: slideQwk, valTileQwk: tileQwk, best: improved };
      history.push(e);
      onEpoch?.(e);
      if (t.select === 'best' && sinceBest >= t.patience) break;
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  return { head: best!.head, history, bestEpoch: best!.epoch + 1, bestQwk: best!.qwk };
}

function validate(
  head: AffineHead,
  config: TrainConfig,
  val: EmbeddingSet,
  classes: number[],
): { slideQwk: number | null; tileQwk: number | null } {
  const k = classes.length;
  const n = val.tiles.length;
  const logits = applyAffineHead(head, val.features, n);
  const probs = headProbabilities(logits, n, config.model.head, k);
  const grading = config.model.head === 'patterns' ? DEFAULT_PATTERN_GRADING : undefined;
  const slides = poolSlides({ tiles: val.tiles, k, probs, head: config.model.head, grading }, classes, 'mean');
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  const tileLabels = val.tiles.map((tile) => classIndex(tile.grade, classes)!);
  const tilePred = Array.from({ length: n }, (_, i) => predictedClass(probs.subarray(i * k, (i + 1) * k), config.model.head));
  return {
    slideQwk: finite(
      quadraticWeightedKappa(
        slides.map((r) => r.label!),
        slides.map((r) => r.pred),
        k,
      ),
    ),
    tileQwk: finite(quadraticWeightedKappa(tileLabels, tilePred, k)),
  };
}
