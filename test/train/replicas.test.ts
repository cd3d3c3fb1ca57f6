import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTileDataset, readManifest } from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import {
  applyGradients,
  backbone,
  buildHead,
  fit,
  loadLayersModel,
  lossAndGradients,
  makeOptimizer,
  parseTrainConfig,
  replicaCount,
  ReplicaTrainer,
  selectBackend,
  shardSizes,
  trainableVariables,
  type StepBatch,
  type TrainConfig,
} from '../../src/train/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
const dataset = join(dir, 'tiles');

function config(extra: Record<string, unknown> = {}, train: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig(
    {
      name: 'replicas',
      task: 'prostate',
      data: { dataset, folds: 3 },
      model: { backbone: 'resnet', width: 0.25, inputSize: 32 },
      augment: [{ name: 'hflip', p: 0.5 }],
      train: {
        epochs: 2,
        batchSize: 16,
        lr: 0.003,
        warmupEpochs: 0.5,
        tilesPerEpoch: 96,
        valTilesPerSlide: 4,
        workers: 0,
        gradClip: 5,
        ...train,
      },
      backend: 'wasm',
      seed: 5,
      ...extra,
    },
    'test',
  );
}

function buildModel(c: TrainConfig): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3], name: 'tiles' });
  const features = backbone(c.model.backbone as string).build(input, { inputSize: 32, width: c.model.width, seed: c.seed });
  return tfl.model({ inputs: input, outputs: buildHead(features, 'softmax', 6, c.seed) });
}

/** A seeded batch of n random tiles with labels 0..5. */
function randomBatch(n: number, seed: number): StepBatch {
  const data = tf.tidy(() => tf.randomUniform([n * 32 * 32 * 3], 0, 1, 'float32', seed).dataSync() as Float32Array);
  return {
    x: { n, height: 32, width: 32, channels: 3, data: Float32Array.from(data) },
    labels: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 6),
  };
}

function rows(b: StepBatch, start: number, end: number): StepBatch {
  const px = 32 * 32 * 3;
  return { x: { ...b.x, n: end - start, data: b.x.data.slice(start * px, end * px) }, labels: b.labels.slice(start, end) };
}

const weightsOf = (m: tfl.LayersModel) => m.weights.map((w) => ({ name: w.originalName, values: Float32Array.from(w.read().dataSync()) }));

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-3;
  for (const v of a) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

beforeAll(async () => {
  await selectBackend('wasm');
  const { manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 12,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0,
    seed: 11,
  });
  await buildTileDataset(readManifest(manifest), { out: dataset, tileSize: 64, mpp: 1.0, stride: 32, minTissue: 0.5 });
}, 600_000);

describe('replica arithmetic', () => {
  it('cuts a batch into contiguous shards that differ by at most one row', () => {
    expect(shardSizes(16, 2)).toEqual([8, 8]);
    expect(shardSizes(10, 3)).toEqual([4, 3, 3]);
    expect(shardSizes(2, 4)).toEqual([1, 1, 0, 0]);
  });

  it('auto uses one replica per core on wasm with at least 4 tiles each, one on a native backend', () => {
    expect(replicaCount('auto', 'wasm', 32, 2)).toBe(2);
    expect(replicaCount('auto', 'wasm', 32, 16)).toBe(8);
    expect(replicaCount('auto', 'wasm', 4, 16)).toBe(1);
    expect(replicaCount('auto', 'tensorflow', 32, 16)).toBe(1);
    expect(replicaCount(3, 'wasm', 2, 16)).toBe(2);
    expect(replicaCount(3, 'cpu', 32, 16)).toBe(1);
  });
});

describe('replica step', () => {
  for (const count of [2, 3]) {
    it(`${count} replicas equal the shard-weighted gradient of one thread, with per-replica batch norm as in DDP`, async () => {
      // SGD: its update is linear in the gradient, so summation rounding stays at float precision (Adam's
      // first step divides by |g| + 1e-7, which magnifies rounding where shard gradients cancel).
      const c = config({}, { optimizer: 'sgd', weightDecay: 1e-4 });
      const replicated = buildModel(c);
      const reference = buildModel(c);
      const batch = randomBatch(10, 3);
      const trainer = await ReplicaTrainer.start(replicated, c, 6, count);
      let loss: number;
      try {
        await trainer.setPhase('full', () => true);
        loss = await trainer.step(batch, 0.05);
        await trainer.sync(replicated);
      } finally {
        await trainer.close();
      }

      // One thread, by hand: each shard's gradients with its own batch statistics, weighted by its size
      // (10 rows: 5+5 or 4+3+3); the running statistics kept are the first shard's.
      const vars = trainableVariables(reference);
      const sizes = shardSizes(10, count);
      const moving = () => reference.weights.filter((w) => /moving/.test(w.originalName));
      let start = 0;
      let firstShardRunning: tf.Tensor[] = [];
      const shards = sizes.map((n, r) => {
        const g = lossAndGradients(reference, vars, rows(batch, start, (start += n)), c, 6);
        if (r === 0) firstShardRunning = moving().map((w) => w.read().clone());
        return g;
      });
      moving().forEach((w, i) => (w as unknown as { write(t: tf.Tensor): void }).write(firstShardRunning[i]));
      const mean = vars.map((_, i) => tf.addN(shards.map((sh, r) => tf.mul(sh.grads[i], sizes[r] / 10))));
      applyGradients(makeOptimizer(c), vars, mean, 0.05, c);
      expect(loss).toBeCloseTo(
        shards.reduce((a, sh, r) => a + (sh.loss * sizes[r]) / 10, 0),
        5,
      );

      const got = weightsOf(replicated);
      const want = weightsOf(reference);
      for (let i = 0; i < got.length; i++) expect(maxRelDiff(got[i].values, want[i].values), got[i].name).toBeLessThan(1e-5);

      // Not synchronised batch norm: a full-batch step (statistics over all 10 rows) lands elsewhere.
      const whole = buildModel(c);
      const wv = trainableVariables(whole);
      const full = lossAndGradients(whole, wv, batch, c, 6);
      applyGradients(makeOptimizer(c), wv, full.grads, 0.05, c);
      const stem = got.findIndex((w) => w.name === 'stem_conv/kernel');
      expect(maxRelDiff(weightsOf(whole)[stem].values, got[stem].values)).toBeGreaterThan(1e-4);
    }, 600_000);
  }
});

describe('replica counts', () => {
  it('a network without batch norm trains to the same weights on 1 and 2 replicas (within float rounding)', async () => {
    const plain = { model: { backbone: 'plain', width: 0.25, inputSize: 32 } };
    await fit(config(plain, { replicas: 1 }), { out: join(dir, 'plain-1') });
    await fit(config(plain, { replicas: 2 }), { out: join(dir, 'plain-2') });
    const one = await loadLayersModel(join(dir, 'plain-1', 'checkpoint'));
    const two = await loadLayersModel(join(dir, 'plain-2', 'checkpoint'));
    const w1 = weightsOf(one);
    const w2 = weightsOf(two);
    let worst = 0;
    for (let i = 0; i < w1.length; i++) worst = Math.max(worst, maxRelDiff(w1[i].values, w2[i].values));
    expect(worst).toBeLessThan(1e-3);
    // ...but not bit-identical: the shards really were summed, not trained on one thread.
    expect(
      readFileSync(join(dir, 'plain-1', 'checkpoint', 'weights.bin')).equals(
        readFileSync(join(dir, 'plain-2', 'checkpoint', 'weights.bin')),
      ),
    ).toBe(false);
  }, 600_000);
});

describe('replica failure', () => {
  const faulty = new URL('./faultyReplicaWorker.mjs', import.meta.url);

  for (const [mode, message] of [
    ['throw', /^training replica 2 failed: injected fault: wasm memory exhausted$/],
    ['exit', /^training replica 2 failed: its thread exited \(code 7\)$/],
  ] as const) {
    it(`a replica that ${mode === 'throw' ? 'throws' : 'dies'} ends the run with its error on one line and leaves the last checkpoint intact`, async () => {
      process.env.GRADELAB_TEST_FAULT = mode;
      process.env.GRADELAB_TEST_FAULT_STEP = '8';
      const out = join(dir, `fault-${mode}`);
      try {
        // 6 steps per epoch: the fault comes in epoch 2, after the first checkpoint.
        await expect(fit(config({}, { replicas: 2 }), { out, replicaWorker: faulty })).rejects.toThrow(message);
      } finally {
        delete process.env.GRADELAB_TEST_FAULT;
        delete process.env.GRADELAB_TEST_FAULT_STEP;
      }
      expect(JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')).epoch).toBe(1);
      await loadLayersModel(join(out, 'checkpoint'));
      // Nothing that looks like a finished model directory.
      expect(existsSync(join(out, 'gradelab.json'))).toBe(false);
      expect(existsSync(join(out, 'model.onnx'))).toBe(false);
    }, 600_000);
  }
});
