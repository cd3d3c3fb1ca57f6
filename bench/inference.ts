import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createRng, encoderSpecSchema, type TileBatch } from '../src/core/index.ts';
import { OnnxEncoder, openSession, prepareInput } from '../src/engine/index.ts';
import { runSession } from '../src/engine/session.ts';
import { backbone, buildHead, exportOnnx, foldBatchNorm, selectBackend } from '../src/train/index.ts';
import { cached, fmt, hasPython, header } from './common.ts';

const SIZE = 128;
const BATCH = 32;

/** The same two architectures in PyTorch (eval mode, no_grad), as a user of PyTorch for CPU runs them. */
const TORCH_MODELS = `
import torch, torch.nn as nn
def cbr(i, o, k, s, relu=True, groups=1, six=False):
    layers = [nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False, groups=groups), nn.BatchNorm2d(o)]
    if relu: layers.append(nn.ReLU6() if six else nn.ReLU())
    return nn.Sequential(*layers)
class Basic(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__(); s.a = cbr(i, o, 3, stride); s.b = cbr(o, o, 3, 1, relu=False)
        s.p = cbr(i, o, 1, stride, relu=False) if (stride != 1 or i != o) else None
    def forward(s, x): return torch.relu(s.b(s.a(x)) + (s.p(x) if s.p is not None else x))
def resnet():
    layers = [cbr(3, 16, 3, 2)]; c = 16
    for i, o in enumerate([16, 32, 64, 128]): layers.append(Basic(c, o, 1 if i == 0 else 2)); c = o
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 6))
class Inverted(nn.Module):
    def __init__(s, i, t, o, stride):
        super().__init__(); h = i * t
        s.body = nn.Sequential(*([cbr(i, h, 1, 1)] if t != 1 else []), cbr(h, h, 3, stride, groups=h, six=True), cbr(h, o, 1, 1, relu=False))
        s.res = stride == 1 and i == o
    def forward(s, x): return x + s.body(x) if s.res else s.body(x)
def mobilenetv2():
    layers = [cbr(3, 32, 3, 2)]; c = 32
    for t, o, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1)]:
        for i in range(n): layers.append(Inverted(c, t, o, s if i == 0 else 1)); c = o
    return nn.Sequential(*layers, cbr(c, 320, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(320, 6))
`;

function randomBatch(n: number, size: number): TileBatch {
  const rng = createRng('bench-inference');
  return { n, height: size, width: size, channels: 3, data: Float32Array.from({ length: n * size * size * 3 }, () => rng.next()) };
}

async function timeIt(run: () => Promise<unknown>, reps: number): Promise<number> {
  await run();
  await run();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  return (performance.now() - t0) / 1000 / reps;
}

/**
 * Inference images/s, 128 px, batch 32: ONNX Runtime (gradelab's model.onnx, batch norms folded) against
 * PyTorch for CPU (the same architecture, eval mode) and TensorFlow.js wasm (one thread, folded), at one
 * thread and at every core, same run. Then feature extraction with the tiny ViT fixture.
 */
export async function benchInference(): Promise<void> {
  const cores = availableParallelism();
  const threads = [...new Set([1, cores])];
  header(`Inference, ${SIZE} px, batch ${BATCH}: ONNX Runtime vs PyTorch vs TensorFlow.js wasm, threads ${threads.join(' and ')}`);
  await selectBackend('wasm');
  const x = randomBatch(BATCH, SIZE);
  const torch = hasPython('torch');
  const results: Record<string, unknown>[] = [];
  for (const [name, width] of [
    ['resnet', 1],
    ['mobilenetv2', 1],
  ] as const) {
    const input = tfl.input({ shape: [SIZE, SIZE, 3] });
    const model = tfl.model({
      inputs: input,
      outputs: buildHead(backbone(name).build(input, { inputSize: SIZE, width, seed: 1 }), 'softmax', 6, 1),
    });
    const path = cached(`${name}-${SIZE}.onnx`);
    writeFileSync(
      path,
      exportOnnx(model, {
        task: 'prostate',
        head: 'softmax',
        classes: [0, 1, 2, 3, 4, 5],
        inputSize: SIZE,
        tileSize: SIZE,
        mpp: 1,
        backbone: name,
        normalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
        weightsSha256: '0'.repeat(64),
        gradelabVersion: 'bench',
      }),
    );
    const folded = foldBatchNorm(model);
    const xt = tf.tensor4d(x.data, [BATCH, SIZE, SIZE, 3]);
    const tfjsSecs = await timeIt(async () => tf.tidy(() => void (folded.predict(xt) as tf.Tensor).dataSync()), 5);
    xt.dispose();
    const nchw = prepareInput(x, { size: SIZE, layout: 'NCHW' });
    for (const t of threads) {
      const { session } = await openSession(path, { threads: t });
      const ortSecs = await timeIt(() => runSession(session, 'image', nchw, [BATCH, 3, SIZE, SIZE], ['logits'], path), 10);
      const prepSecs = await timeIt(async () => prepareInput(x, { size: SIZE, layout: 'NCHW' }), 10);
      await session.release();
      let torchIps: number | undefined;
      if (torch) {
        const script = `${TORCH_MODELS}
import time, json
torch.set_num_threads(${t}); torch.manual_seed(1)
m = ${name}().eval(); x = torch.rand(${BATCH}, 3, ${SIZE}, ${SIZE})
with torch.no_grad():
    m(x); m(x); t0 = time.perf_counter()
    for _ in range(10): m(x)
print(json.dumps({'ips': 10 * ${BATCH} / (time.perf_counter() - t0)}))`;
        torchIps = JSON.parse(
          execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(t) } }),
        ).ips;
      }
      const ort = BATCH / ortSecs;
      const tfjs = BATCH / tfjsSecs;
      results.push({ model: name, threads: t, ort, ortWithPrep: BATCH / (ortSecs + prepSecs), torch: torchIps, tfjs });
      process.stdout.write(
        `${name.padEnd(12)} ${t} thread${t > 1 ? 's' : ' '}: ONNX Runtime ${fmt(ort)} img/s (${fmt(BATCH / (ortSecs + prepSecs))} with input preparation) | PyTorch ${torchIps ? fmt(torchIps) : 'n/a'} | tfjs-wasm (1 thread) ${fmt(tfjs)} | ONNX Runtime / PyTorch ${torchIps ? `${fmt(ort / torchIps, 2)}x` : 'n/a'}, / tfjs ${fmt(ort / tfjs, 2)}x\n`,
      );
    }
    if (folded !== model) folded.dispose();
    model.dispose();
  }
  if (!torch) process.stdout.write('PyTorch not installed (apt-get install python3-torch): no reference\n');
  await benchFeatures(threads);
  writeFileSync(cached('inference-last.json'), JSON.stringify(results));
}

/** Feature extraction tiles/s with the tiny ViT fixture (64 px, batch 64): ONNX Runtime vs PyTorch. */
async function benchFeatures(threads: number[]): Promise<void> {
  const onnx = fileURLToPath(new URL('../experiments/encoders/vit-tiny.onnx', import.meta.url));
  const script = fileURLToPath(new URL('../test/fixtures/onnx/make-encoders.py', import.meta.url));
  const x = randomBatch(64, 64);
  for (const t of threads) {
    const enc = await OnnxEncoder.open(onnx, encoderSpecSchema.parse({ onnx, inputSize: 64 }), { threads: t });
    const secs = await timeIt(() => enc.embed(x), 20);
    await enc.close();
    let torchIps: number | undefined;
    if (hasPython('torch')) {
      const py = `
import importlib.util, json, time, torch
spec = importlib.util.spec_from_file_location('fx', ${JSON.stringify(script)}); fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)
torch.set_num_threads(${t}); torch.manual_seed(11)
m = fx.TinyVit().eval(); x = torch.rand(64, 3, 64, 64)
with torch.no_grad():
    m(x); m(x); t0 = time.perf_counter()
    for _ in range(20): m(x)
print(json.dumps({'ips': 20 * 64 / (time.perf_counter() - t0)}))`;
      torchIps = JSON.parse(
        execFileSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(t) } }),
      ).ips;
    }
    const ort = 64 / secs;
    process.stdout.write(
      `tiny ViT features, ${t} thread${t > 1 ? 's' : ' '}: ONNX Runtime ${fmt(ort)} tiles/s (input preparation included) | PyTorch ${torchIps ? fmt(torchIps) : 'n/a'} | ratio ${torchIps ? `${fmt(ort / torchIps, 2)}x` : 'n/a'}\n`,
    );
  }
}
