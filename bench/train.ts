import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  backbone,
  buildHead,
  foldBatchNorm,
  LocalTrainer,
  parseTrainConfig,
  ReplicaTrainer,
  selectBackend,
  type StepBatch,
  type StepReport,
  type Trainer,
  type TrainConfig,
} from '../src/train/index.ts';
import { fmt, hasPython, header } from './common.ts';

const SIZE = 128;
const BATCH = 32;
// Enough steps for V8 to optimise the replicas' summing loop (about six), as it is in any real run.
const WARMUP = 8;
const STEPS = 6;

function resnetConfig(): TrainConfig {
  return parseTrainConfig(
    {
      name: 'bench',
      task: 'prostate',
      data: { dataset: '-' },
      model: { backbone: 'resnet', width: 1, inputSize: SIZE },
      train: { batchSize: BATCH, weightDecay: 0 },
      backend: 'wasm',
    },
    'bench',
  );
}

function resnet(config: TrainConfig): tfl.LayersModel {
  const input = tfl.input({ shape: [SIZE, SIZE, 3] });
  return tfl.model({
    inputs: input,
    outputs: buildHead(backbone('resnet').build(input, { inputSize: SIZE, width: config.model.width, seed: 1 }), 'softmax', 6, 1),
  });
}

function randomBatch(): StepBatch {
  const data = tf.tidy(() => tf.randomUniform([BATCH * SIZE * SIZE * 3], 0, 1, 'float32', 1).dataSync() as Float32Array);
  return {
    x: { n: BATCH, height: SIZE, width: SIZE, channels: 3, data: Float32Array.from(data) },
    labels: Int32Array.from({ length: BATCH }, (_, i) => i % 6),
  };
}

/** Training images/s of a Trainer (one thread or replicas) over STEPS steps after WARMUP. */
async function trainerIps(trainer: Trainer, batch: StepBatch): Promise<number> {
  await trainer.setPhase('full', () => true);
  for (let i = 0; i < WARMUP; i++) await trainer.step(batch, 1e-3);
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await trainer.step(batch, 1e-3);
  return (STEPS * BATCH) / ((performance.now() - t0) / 1000);
}

/**
 * Training images/s of the compact ResNet at 128x128, batch 32, on one thread and on data-parallel
 * replicas, against the same architecture in PyTorch for CPU (Debian python3-torch) at the same thread
 * counts, same run; then where a replica step's time goes and what that projects for bigger machines.
 */
export async function benchTrain(): Promise<void> {
  header(
    `Compact ResNet (width 1), ${SIZE}x${SIZE}, batch ${BATCH}, Adam: training images/s on 1 thread and on replicas; inference on 1 thread`,
  );
  const choice = await selectBackend('wasm');
  const config = resnetConfig();
  const model = resnet(config);
  const params = model.countParams();
  const batch = randomBatch();
  const local = new LocalTrainer(model, config, 6);
  const oneIps = await trainerIps(local, batch);
  await local.close();
  const replicas = 2;
  const replicated = await ReplicaTrainer.start(resnet(config), config, 6, replicas);
  let twoIps: number;
  try {
    twoIps = await trainerIps(replicated, batch);
  } finally {
    await replicated.close();
  }
  const timed = replicated.reports.slice(WARMUP);
  const mean = (f: (r: StepReport) => number) => timed.reduce((a, step) => a + Math.max(...step.map(f)), 0) / timed.length;
  const reduceMs = mean((r) => r.reduceMs);
  const syncMs = mean((r) => r.syncMs);
  const waitMs = mean((r) => r.waitMs);
  const stepMs = (BATCH * 1000) / twoIps;

  // Inference as gradelab's tfjs predictor runs it: batch norms folded into the convolutions.
  const x = tf.tensor4d(batch.x.data, [BATCH, SIZE, SIZE, 3]);
  const inference = foldBatchNorm(model);
  for (let i = 0; i < 2; i++) tf.tidy(() => void (inference.predict(x) as tf.Tensor).dataSync());
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) tf.tidy(() => void (inference.predict(x) as tf.Tensor).dataSync());
  const inferIps = (10 * BATCH) / ((performance.now() - t0) / 1000);
  x.dispose();
  process.stdout.write(
    `gradelab (${choice.name}), ${params} parameters: train ${fmt(oneIps)} img/s on 1 thread, ${fmt(twoIps)} img/s on ${replicas} replicas (${fmt(twoIps / oneIps, 2)}x, target 1.7x); inference ${fmt(inferIps)} img/s on 1 thread\n`,
  );
  const share = (ms: number) => `${fmt(ms, 1)} ms (${fmt((100 * ms) / stepMs, 1)}%)`;
  process.stdout.write(
    `replica step ${fmt(stepMs, 0)} ms: all-reduce ${share(reduceMs + syncMs)} = summing ${share(reduceMs)} + barrier ${share(syncMs)}; waiting for the slower replica's gradients ${share(waitMs)}\n`,
  );
  projectReplicas(params, replicas, reduceMs, syncMs, (BATCH * 1000) / oneIps);

  if (!hasPython('torch')) {
    process.stdout.write('PyTorch not installed (apt-get install python3-torch): no reference\n');
    return;
  }
  const ref = [1, 2].map((threads) => pytorchResnet(threads));
  for (const [i, r] of ref.entries())
    process.stdout.write(
      `PyTorch ${i + 1} thread${i ? 's' : ''}: train ${fmt(r.train)} img/s, inference ${fmt(r.infer)} img/s (${r.params} parameters)\n`,
    );
  process.stdout.write(
    `ratio: training ${fmt(oneIps / ref[0].train, 2)}x PyTorch at 1 thread, ${fmt(twoIps / ref[1].train, 2)}x at 2 (target 0.3x); inference ${fmt(inferIps / ref[0].infer, 2)}x at 1 thread\n`,
  );
}

/**
 * Scaling at 8, 16 and 32 replicas from the all-reduce measured here. Each replica reads its segment of
 * every shard's gradient (P floats in all) and writes P/N results: the replicas together move N(P + P/N)
 * floats per step. The estimate assumes the memory bandwidth the summing reached here is all a bigger
 * machine has (pessimistic: workstations have more memory channels), that the barrier costs what it cost
 * here, and that compute divides evenly over the shards (optimistic for shards of 1-2 tiles).
 */
function projectReplicas(params: number, measuredAt: number, reduceMs: number, syncMs: number, oneStepMs: number): void {
  const bytes = (n: number) => n * (params + params / n) * 4;
  const bandwidth = bytes(measuredAt) / (reduceMs / 1000);
  process.stdout.write(
    `summing moves ${fmt(bytes(measuredAt) / 1e6, 1)} MB per step at ${measuredAt} replicas: ${fmt(bandwidth / 1e9, 2)} GB/s; barrier ${fmt(syncMs, 1)} ms\n`,
  );
  for (const n of [8, 16, 32]) {
    const allReduceMs = (bytes(n) / bandwidth) * 1000 + syncMs;
    const stepMs = oneStepMs / n + allReduceMs;
    process.stdout.write(
      `  projected ${n} replicas (batch ${BATCH}, ${fmt(BATCH / n, 0)} tile${n === BATCH ? '' : 's'} each): all-reduce ${fmt(allReduceMs, 1)} ms of a ${fmt(stepMs, 0)} ms step (${fmt((100 * allReduceMs) / stepMs, 0)}%), ${fmt(oneStepMs / stepMs, 1)}x one thread\n`,
    );
  }
}

function pytorchResnet(threads: number): { train: number; infer: number; params: number } {
  const script = `
import time, json, torch, torch.nn as nn
torch.set_num_threads(${threads}); torch.manual_seed(1)
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
opt = torch.optim.Adam(m.parameters(), 1e-3); x = torch.rand(${BATCH}, 3, ${SIZE}, ${SIZE}); y = torch.arange(${BATCH}) % 6
def step():
    opt.zero_grad(); l = nn.functional.cross_entropy(m(x), y); l.backward(); opt.step()
for _ in range(${WARMUP}): step()
t = time.perf_counter()
for _ in range(${STEPS}): step()
tr = ${STEPS} * ${BATCH} / (time.perf_counter() - t)
m.eval()
with torch.no_grad():
    m(x); t = time.perf_counter()
    for _ in range(10): m(x)
inf = 10 * ${BATCH} / (time.perf_counter() - t)
print(json.dumps({'train': tr, 'infer': inf, 'params': sum(p.numel() for p in m.parameters())}))`;
  return JSON.parse(
    execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } }),
  );
}
