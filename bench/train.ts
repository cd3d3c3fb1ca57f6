import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { backbone, buildHead, foldBatchNorm, headLoss, selectBackend } from '../src/train/index.ts';
import { fmt, hasPython, header } from './common.ts';

/**
 * Training and inference images/s of the compact ResNet at 128x128, batch 32, against the same
 * architecture in PyTorch for CPU (Debian python3-torch), same thread count (1), same run.
 */
export async function benchTrain(): Promise<void> {
  header('Compact ResNet (width 1), 128x128, batch 32, Adam: training and inference images/s, 1 thread');
  const choice = await selectBackend('wasm');
  const size = 128;
  const input = tfl.input({ shape: [size, size, 3] });
  const model = tfl.model({ inputs: input, outputs: buildHead(backbone('resnet').build(input, { inputSize: size, width: 1, seed: 1 }), 'softmax', 6, 1) });
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([32, size, size, 3]);
  const labels = Int32Array.from({ length: 32 }, (_, i) => i % 6);
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => headLoss(model.apply(x, { training: true }) as tf.Tensor2D, 'softmax', 6, labels, 0));
    opt.applyGradients(grads as never);
    return value.dataSync()[0];
  });
  step();
  step();
  const steps = 6;
  let t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const trainIps = (steps * 32) / ((performance.now() - t0) / 1000);
  // Inference as gradelab's predictors run it: batch norms folded into the convolutions.
  const inference = foldBatchNorm(model);
  // (No typed array returned from tidy: tidy walks a returned array element by element.)
  for (let i = 0; i < 2; i++) tf.tidy(() => void (inference.predict(x) as tf.Tensor).dataSync());
  t0 = performance.now();
  for (let i = 0; i < 10; i++) tf.tidy(() => void (inference.predict(x) as tf.Tensor).dataSync());
  const inferIps = 320 / ((performance.now() - t0) / 1000);
  process.stdout.write(`gradelab (${choice.name}): train ${fmt(trainIps)} img/s, inference ${fmt(inferIps)} img/s (${model.countParams()} parameters)\n`);
  // The bound the backend sets: the model's forward convolutions alone, one batch. Inference cannot be
  // faster; a training step runs at least three such passes (forward, input and filter gradients).
  const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
  let convMs = 0;
  for (const layer of convs) {
    const c = layer.getConfig() as { strides: number[]; padding: 'same' | 'valid' };
    const [kernel] = layer.getWeights();
    const [, h, w, ch] = (layer.input as tfl.SymbolicTensor).shape as number[];
    const xin = tf.randomUniform([32, h, w, ch]) as tf.Tensor4D;
    const run = () => tf.tidy(() => void tf.conv2d(xin, kernel as tf.Tensor4D, [c.strides[0], c.strides[1]], c.padding).dataSync());
    run();
    const c0 = performance.now();
    for (let i = 0; i < 5; i++) run();
    convMs += (performance.now() - c0) / 5;
    xin.dispose();
  }
  process.stdout.write(`${choice.name} convolutions alone: ${fmt(convMs, 1)} ms per batch of 32, so at most ${fmt(32000 / convMs)} img/s inference and ${fmt(32000 / (3 * convMs))} img/s training\n`);
  if (!hasPython('torch')) {
    process.stdout.write('PyTorch not installed (apt-get install python3-torch): no reference\n');
    return;
  }
  const script = `
import time, json, torch, torch.nn as nn
torch.set_num_threads(1); torch.manual_seed(1)
def cb(i, o, s): return nn.Sequential(nn.Conv2d(i, o, 3 if s else 1, stride=s or 1, padding=1 if s else 0, bias=False), nn.BatchNorm2d(o, momentum=0.1))
class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__(); s.a = nn.Sequential(cb(i, o, stride), nn.ReLU()); s.b = cb(o, o, 1)
        s.p = cb(i, o, 0) if (stride != 1 or i != o) else None
        if s.p is not None and stride != 1: s.p[0].stride = (stride, stride)
    def forward(s, x): return torch.relu(s.b(s.a(x)) + (s.p(x) if s.p is not None else x))
ch = [16, 32, 64, 128]
layers = [cb(3, 16, 2), nn.ReLU()]; c = 16
for i, o in enumerate(ch): layers.append(Block(c, o, 1 if i == 0 else 2)); c = o
m = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 6))
opt = torch.optim.Adam(m.parameters(), 1e-3); x = torch.rand(32, 3, 128, 128); y = torch.arange(32) % 6
def step():
    opt.zero_grad(); l = nn.functional.cross_entropy(m(x), y); l.backward(); opt.step()
step(); step(); t = time.perf_counter()
for _ in range(6): step()
tr = 6 * 32 / (time.perf_counter() - t)
m.eval()
with torch.no_grad():
    m(x); t = time.perf_counter()
    for _ in range(10): m(x)
inf = 320 / (time.perf_counter() - t)
print(json.dumps({'train': tr, 'infer': inf, 'params': sum(p.numel() for p in m.parameters())}))`;
  const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } }));
  process.stdout.write(`PyTorch ${'1 thread'}: train ${fmt(ref.train)} img/s, inference ${fmt(ref.infer)} img/s (${ref.params} parameters)\n`);
  process.stdout.write(`ratio: training ${fmt(trainIps / ref.train, 2)}x PyTorch (target 0.5x, ceiling ${fmt(32000 / (3 * convMs) / ref.train, 2)}x), inference ${fmt(inferIps / ref.infer, 2)}x (target 1x, ceiling ${fmt(32000 / convMs / ref.infer, 2)}x)\n`);
}
