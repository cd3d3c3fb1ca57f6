import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { backbone, buildHead, TfjsPredictor, selectBackend } from '../../src/train/index.ts';
import { foldBatchNorm } from '../../src/train/fold.ts';

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('foldBatchNorm', () => {
  it('folds by hand: conv w = 2, BN gamma 3, beta 1, mean 0.5, var 3, eps 1e-3, then ReLU', () => {
    const input = tfl.input({ shape: [1, 1, 1] });
    let y = tfl.layers.conv2d({ filters: 1, kernelSize: 1, useBias: false, name: 'c' }).apply(input) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization({ epsilon: 1e-3, name: 'bn' }).apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.reLU({ name: 'r' }).apply(y) as tfl.SymbolicTensor;
    const features = tfl.layers.flatten({ name: 'features' }).apply(y) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: features });
    model.getLayer('c').setWeights([tf.tensor4d([2], [1, 1, 1, 1])]);
    model.getLayer('bn').setWeights([tf.tensor1d([3]), tf.tensor1d([1]), tf.tensor1d([0.5]), tf.tensor1d([3])]);
    const folded = foldBatchNorm(model);
    expect(folded.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2D', 'Flatten']);
    const [w, b] = folded.layers[1].getWeights().map((t) => t.dataSync()[0]);
    const s = 3 / Math.sqrt(3.001);
    expect(w).toBeCloseTo(2 * s, 5);
    expect(b).toBeCloseTo(-0.5 * s + 1, 5);
    // x = 1: 2 s - 0.5 s + 1; x = -1: negative before the ReLU, so 0.
    const out = (folded.predict(tf.tensor4d([1, -1], [2, 1, 1, 1])) as tf.Tensor).dataSync();
    expect(out[0]).toBeCloseTo(1.5 * s + 1, 5);
    expect(out[1]).toBe(0);
  });

  for (const name of ['resnet', 'mobilenetv2']) {
    it(`${name}: same predictions without batch norms, original untouched`, () => {
      const input = tfl.input({ shape: [32, 32, 3] });
      const model = tfl.model({
        inputs: input,
        outputs: buildHead(backbone(name).build(input, { inputSize: 32, width: 0.5, seed: 1 }), 'softmax', 4, 1),
      });
      // Statistics far from the initial (1, 0, 0, 1), so that folding them wrongly would show.
      for (const l of model.layers) {
        if (l.getClassName() !== 'BatchNormalization') continue;
        l.setWeights(
          l
            .getWeights()
            .map((w, i) =>
              tf.add(
                tf.mul(tf.randomUniform(w.shape, 0, 1, 'float32', 7 + i), i === 1 || i === 2 ? 0.3 : 1),
                i === 0 || i === 3 ? 0.5 : -0.1,
              ),
            ),
        );
      }
      const before = model.getWeights().map((w) => w.dataSync().slice());
      const folded = foldBatchNorm(model);
      expect(folded.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
      expect(folded.getLayer('features')).toBeTruthy();
      const x = tf.randomUniform([4, 32, 32, 3], 0, 1, 'float32', 3);
      const a = (model.predict(x) as tf.Tensor).dataSync();
      const b = (folded.predict(x) as tf.Tensor).dataSync();
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4);
      model.getWeights().forEach((w, i) => expect(w.dataSync()).toEqual(before[i]));
    });
  }

  it('a folding TfjsPredictor gives the unfolded probabilities and frees every tensor it made', async () => {
    const before = tf.memory().numTensors;
    const make = () => {
      const input = tfl.input({ shape: [32, 32, 3] });
      return tfl.model({
        inputs: input,
        outputs: buildHead(backbone('resnet').build(input, { inputSize: 32, width: 0.5, seed: 2 }), 'softmax', 3, 2),
      });
    };
    const meta = { head: 'softmax' as const, classes: [0, 1, 2], inputSize: 32 };
    const plain = new TfjsPredictor(make(), meta);
    const folded = new TfjsPredictor(make(), meta, { fold: true });
    const batch = {
      n: 2,
      width: 32,
      height: 32,
      channels: 3 as const,
      data: Float32Array.from({ length: 2 * 32 * 32 * 3 }, (_, i) => (i % 97) / 97),
    };
    const a = await plain.run(batch);
    const b = await folded.run(batch);
    for (let i = 0; i < a.probs.length; i++) expect(Math.abs(a.probs[i] - b.probs[i])).toBeLessThan(1e-5);
    for (let i = 0; i < a.features.length; i++) expect(Math.abs(a.features[i] - b.features[i])).toBeLessThan(1e-4);
    plain.dispose();
    folded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
