import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, headProbabilities, type TileBatch } from '../../src/core/index.ts';
import { openSession, prepareInput } from '../../src/engine/index.ts';
import { runSession } from '../../src/engine/session.ts';
import { readContract, readModel, type ModelContract } from '../../src/onnx/index.ts';
import { backbone, buildHead, exportOnnx, selectBackend, TfjsPredictor } from '../../src/train/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();

beforeAll(async () => {
  await selectBackend('wasm');
});

function contract(head: ModelContract['head'], classes: number[], inputSize: number, name: string): ModelContract {
  return {
    task: classes.length === 3 ? 'breast' : 'prostate',
    head,
    classes,
    inputSize,
    tileSize: 40,
    mpp: 1,
    backbone: name,
    normalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
    weightsSha256: 'a'.repeat(64),
    gradelabVersion: 'test',
  };
}

/** A registry model with batch-norm statistics and CORAL thresholds far from their initial values. */
function model(name: string, head: 'softmax' | 'ordinal' | 'multitask', k: number, size: number): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3] });
  const m = tfl.model({
    inputs: input,
    outputs: buildHead(backbone(name).build(input, { inputSize: size, width: 0.25, seed: 2 }), head, k, 2),
  });
  const rng = createRng(`stats/${name}/${head}`);
  for (const layer of m.layers) {
    if (layer.getClassName() === 'BatchNormalization') {
      const n = layer.getWeights()[0].shape[0];
      const r = (lo: number, hi: number) => tf.tensor1d(Array.from({ length: n }, () => rng.uniform(lo, hi)));
      layer.setWeights([r(0.5, 1.5), r(-0.3, 0.3), r(-0.2, 0.2), r(0.2, 2)]);
    }
    if (layer.getClassName() === 'CoralBias') layer.setWeights([tf.tensor1d(Array.from({ length: k - 1 }, (_, i) => 1.5 - i * 0.7))]);
  }
  return m;
}

function batch(n: number, size: number, seed: string): TileBatch {
  const rng = createRng(seed);
  return { n, height: size, width: size, channels: 3, data: Float32Array.from({ length: n * size * size * 3 }, () => rng.next()) };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('ONNX export of every registry backbone and head', () => {
  const cases: [string, 'softmax' | 'ordinal' | 'multitask', number][] = [
    ['resnet', 'softmax', 6],
    ['resnet', 'ordinal', 6],
    ['resnet', 'multitask', 3],
    ['mobilenetv2', 'softmax', 6],
    ['mobilenetv2', 'ordinal', 6],
    ['mobilenetv2', 'multitask', 3],
  ];
  for (const [name, head, k] of cases) {
    it(`${name} with a ${head} head: ONNX Runtime gives TensorFlow.js's probabilities, features and logits within 1e-4`, async () => {
      const size = 32;
      const m = model(name, head, k, size);
      const classes = Array.from({ length: k }, (_, i) => (k === 3 ? i + 1 : i));
      const c = contract(head, classes, size, name);
      const path = join(dir, `${name}-${head}.onnx`);
      writeFileSync(path, exportOnnx(m, c));
      // The reference runs the unfolded model: folding and conversion are both under test.
      const reference = new TfjsPredictor(m, { head, classes, inputSize: size });
      const x = batch(5, 40, `${name}/${head}`);
      const ref = await reference.run(x);
      const { session } = await openSession(path, { threads: 1 });
      const [features, logits] = await runSession(
        session,
        'image',
        prepareInput(x, { size, layout: 'NCHW' }),
        [5, 3, size, size],
        ['features', 'logits'],
        path,
      );
      await session.release();
      expect(maxDiff(features, ref.features)).toBeLessThan(1e-4);
      expect(maxDiff(logits, ref.logits)).toBeLessThan(1e-4);
      expect(maxDiff(headProbabilities(logits, 5, head, k), ref.probs)).toBeLessThan(1e-4);
      // The logits are not degenerate: the test would see a wrong sign or a swapped channel.
      expect(Math.max(...ref.logits) - Math.min(...ref.logits)).toBeGreaterThan(0.05);
      expect(readContract(path)).toEqual(c);
      const proto = readModel(path);
      expect(proto.graph!.node!.some((n) => n.opType === 'BatchNormalization')).toBe(false);
      m.dispose();
    }, 600_000);
  }

  it('refuses a layer it cannot convert, naming it', () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'upsample' }).apply(input) as tfl.SymbolicTensor;
    const features = tfl.layers.globalAveragePooling2d({ name: 'features' }).apply(up) as tfl.SymbolicTensor;
    const m = tfl.model({
      inputs: input,
      outputs: tfl.layers.dense({ units: 2, name: 'head_logits' }).apply(features) as tfl.SymbolicTensor,
    });
    expect(() => exportOnnx(m, contract('softmax', [0, 1], 8, 'custom'))).toThrow(/layer upsample \(UpSampling2D\) has no ONNX conversion/);
  });

  it('refuses an opset outside 11-21', () => {
    const m = model('resnet', 'softmax', 6, 16);
    expect(() => exportOnnx(m, contract('softmax', [0, 1, 2, 3, 4, 5], 16, 'resnet'), { opset: 9 })).toThrow(
      /opset must be an integer from 11 to 21/,
    );
  });
});
