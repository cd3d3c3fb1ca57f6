import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { sha256File, writeFileAtomic, writeModelMeta } from '../src/core/index.ts';
import { buildTileDataset, isTileDataset, readManifest } from '../src/data/index.ts';
import { generateSynthetic } from '../src/synth/index.ts';
import type { Measure } from './robustnessChild.ts';
import { contractOf } from '../src/onnx/index.ts';
import { backbone, buildHead, exportOnnx, saveLayersModel, selectBackend } from '../src/train/index.ts';
import { cached, exists, fmt, header } from './common.ts';

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('./robustnessChild.ts', import.meta.url));

/** A demo-size model directory (untrained: throughput does not depend on the weights), with model.onnx. */
async function modelDir(): Promise<string> {
  const dir = cached('robustness-model');
  if (exists(join(dir, 'model.onnx'))) return dir;
  await selectBackend('wasm');
  const input = tfl.input({ shape: [64, 64, 3] });
  const model = tfl.model({
    inputs: input,
    outputs: buildHead(backbone('resnet').build(input, { inputSize: 64, width: 0.5, seed: 1 }), 'softmax', 6, 1),
  });
  await saveLayersModel(model, dir);
  const meta = {
    format: 'gradelab-model/1' as const,
    task: 'prostate' as const,
    head: 'softmax' as const,
    classes: [0, 1, 2, 3, 4, 5],
    backbone: 'resnet',
    width: 0.5,
    inputSize: 64,
    tileSize: 128,
    mpp: 1,
    augment: [],
    normaliser: null,
    seed: 1,
    backend: 'wasm',
    runId: null,
    datasetHash: '',
    configHash: '',
    bestEpoch: 1,
    metrics: {},
    trainedAt: new Date().toISOString(),
    weightsSha256: await sha256File(join(dir, 'weights.bin')),
    featureDim: 64,
  };
  await writeModelMeta(dir, meta);
  await writeFileAtomic(join(dir, 'model.onnx'), exportOnnx(model, contractOf(meta)));
  model.dispose();
  return dir;
}

/**
 * A robustness suite's throughput: conditions per minute and tiles/s, on the stain-shift suite with a
 * demo-size compact ResNet. "Before" runs it as gradelab did until this change (each condition reads
 * and decodes its tiles, TensorFlow.js wasm infers); "after" as it runs now (tiles decoded once per
 * run, ONNX Runtime on every core); same run, same tiles, same perturbations.
 */
export async function benchRobustness(): Promise<void> {
  header('Robustness suite throughput: stain-shift suite, compact ResNet (width 0.5, 64 px), 128 px tiles');
  const dir = cached('robustness-ds');
  if (!isTileDataset(dir)) {
    rmSync(dir, { recursive: true, force: true });
    const { manifest } = await generateSynthetic({
      task: 'prostate',
      slides: 12,
      out: cached('robustness-slides'),
      size: 1024,
      anomalies: 0,
      seed: 3,
    });
    await buildTileDataset(readManifest(manifest), { out: dir, tileSize: 128, mpp: 1.0, stride: 64 });
  }
  const model = await modelDir();
  // Each configuration in its own process: one engine's threads and heap must not slow the other.
  const measure = (mode: 'before' | 'after') =>
    JSON.parse(
      execFileSync(process.execPath, [RUN_TS, CHILD, mode, dir, model], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as Measure;
  const line = (label: string, m: Measure) =>
    process.stdout.write(
      `${label}: ${m.units} conditions x ${m.tiles} tiles in ${fmt(m.secs)} s: ${fmt((m.units / m.secs) * 60)} conditions/min, ${fmt((m.units * m.tiles) / m.secs)} tiles/s; reading ${fmt(m.read, 2)} s, perturbation ${fmt(m.perturb, 2)} s, inference ${fmt(m.infer, 2)} s (perturbation and inference overlap)\n`,
    );
  const before = measure('before');
  line('before (decode per condition, tfjs-wasm)', before);
  const after = measure('after');
  line('after  (decode once, ONNX Runtime)       ', after);
  process.stdout.write(`ratio: ${fmt(before.secs / after.secs, 2)}x conditions/min (target 3x)\n`);
  writeFileSync(cached('robustness-last.json'), JSON.stringify({ before, after }));
}
