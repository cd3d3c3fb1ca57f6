import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from './backend.ts';
import type { TrainConfig } from './config.ts';
import './heads.ts';
import { restoreOptimizer } from './modelDir.ts';
import { applyGradients, lossAndGradients, makeOptimizer, trainableVariables } from './step.ts';
import type { PatternTargets } from './patternTargets.ts';

/**
 * One training replica in a worker thread: its own wasm backend and copy of the model. Each step it
 * computes its shard's gradients into its slot of a shared buffer, waits at a barrier for the others,
 * sums all slots in shard order (so every replica gets the same bits) and applies the same update.
 */
export type ReplicaMessage =
  | {
      type: 'init';
      topology: object;
      specs: tf.io.WeightsManifestEntry[];
      data: ArrayBuffer;
      config: TrainConfig;
      k: number;
      index: number;
      replicas: number;
      grads: SharedArrayBuffer;
      control: SharedArrayBuffer;
    }
  | { type: 'phase'; phase: string; trainable: string[]; restore?: { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } }
  | {
      type: 'step';
      data: Float32Array;
      n: number;
      height: number;
      width: number;
      labels: Int32Array;
      extra?: Int32Array[];
      patterns?: PatternTargets;
      lr: number;
      sizes: number[];
    }
  | { type: 'state' };

/** Control words in shared memory: arrivals at the barrier, its generation, and an abort flag. */
const ARRIVED = 0;
const GENERATION = 1;
const ABORT = 2;
export const CONTROL_WORDS = 3;

let model: tfl.LayersModel;
let config: TrainConfig;
let k = 0;
let index = 0;
let replicas = 1;
let grads: Float32Array;
let control: Int32Array;
let optimizer: tf.Optimizer | undefined;
let vars: tf.Variable[] = [];
let offsets: number[] = [];
let size = 0;

/** Waits until every replica has written its gradients; gives up when the run is aborted. */
function barrier(): void {
  const generation = Atomics.load(control, GENERATION);
  if (Atomics.add(control, ARRIVED, 1) === replicas - 1) {
    Atomics.store(control, ARRIVED, 0);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    return;
  }
  while (Atomics.load(control, GENERATION) === generation) {
    if (Atomics.load(control, ABORT)) throw new Error('the run was stopped (another replica failed)');
    Atomics.wait(control, GENERATION, generation, 200);
  }
}

async function init(m: Extract<ReplicaMessage, { type: 'init' }>): Promise<void> {
  await selectBackend('wasm', { quiet: true });
  config = m.config;
  k = m.k;
  index = m.index;
  replicas = m.replicas;
  grads = new Float32Array(m.grads);
  control = new Int32Array(m.control);
  model = (await tfl.models.modelFromJSON({ modelTopology: m.topology } as Parameters<
    typeof tfl.models.modelFromJSON
  >[0])) as tfl.LayersModel;
  const named = tf.io.decodeWeights(m.data, m.specs);
  model.setWeights(model.weights.map((w) => named[w.originalName]));
  tf.dispose(Object.values(named));
}

async function setPhase(m: Extract<ReplicaMessage, { type: 'phase' }>): Promise<void> {
  const train = new Set(m.trainable);
  for (const layer of model.layers) layer.trainable = train.has(layer.name);
  vars = trainableVariables(model);
  offsets = [];
  size = 0;
  for (const v of vars) {
    offsets.push(size);
    size += v.size;
  }
  optimizer?.dispose();
  optimizer = makeOptimizer(config);
  if (m.restore) {
    await restoreOptimizer(optimizer, m.restore);
  }
}

let sums = new Float64Array(0);
/** A reusable double-precision accumulator for this replica's segment. */
function accumulator(n: number): Float64Array {
  if (sums.length !== n) sums = new Float64Array(n);
  return sums;
}

/** The part [lo, hi) of the gradient vector that replica `r` of `n` reduces. */
export function segment(size: number, r: number, n: number): [number, number] {
  return [Math.floor((size * r) / n), Math.floor((size * (r + 1)) / n)];
}

/**
 * A step's loss and where its time went: computing, waiting at the barrier for slower replicas, summing
 * its segment (memory-bound work), and the second barrier (synchronisation latency).
 */
export interface StepReport {
  loss: number;
  computeMs: number;
  waitMs: number;
  reduceMs: number;
  syncMs: number;
}

function step(m: Extract<ReplicaMessage, { type: 'step' }>): StepReport {
  const t0 = performance.now();
  const { loss, grads: mine } = lossAndGradients(
    model,
    vars,
    { x: { n: m.n, height: m.height, width: m.width, channels: 3, data: m.data }, labels: m.labels, extra: m.extra, patterns: m.patterns },
    config,
    k,
  );
  try {
    const slot = grads.subarray(index * size, (index + 1) * size);
    mine.forEach((g, i) => slot.set(g.dataSync() as Float32Array, offsets[i]));
  } finally {
    tf.dispose(mine);
  }
  const t1 = performance.now();
  barrier();
  const t2 = performance.now();
  // Reduce-scatter then all-gather through shared memory: each replica sums one segment of the
  // gradient over all shards (shard means weighted by shard size, in shard order, in double
  // precision) into the result area, so every element is computed once and every replica reads the
  // same float32 values. Each replica moves about three gradient-sized arrays whatever the count.
  const total = m.sizes.reduce((a, b) => a + b, 0);
  const [lo, hi] = segment(size, index, replicas);
  const shared = grads;
  const acc = accumulator(hi - lo);
  acc.fill(0);
  // Shard-outer, element-inner: sequential reads of each slot (memory-bound, so this order matters).
  for (let r = 0; r < replicas; r++) {
    const w = m.sizes[r] / total;
    const base = r * size + lo;
    for (let j = 0; j < acc.length; j++) acc[j] += w * shared[base + j];
  }
  const result = shared.subarray(replicas * size, (replicas + 1) * size);
  result.set(acc, lo);
  const reduced = performance.now();
  barrier();
  const t3 = performance.now();
  const tensors = vars.map((v, i) => tf.tensor(result.subarray(offsets[i], offsets[i] + v.size), v.shape));
  try {
    applyGradients(optimizer!, vars, tensors, m.lr, config);
  } finally {
    tf.dispose(tensors);
  }
  const t4 = performance.now();
  return { loss, computeMs: t1 - t0 + (t4 - t3), waitMs: t2 - t1, reduceMs: reduced - t2, syncMs: t3 - reduced };
}

async function state(): Promise<{
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
  optSpecs: tf.io.WeightsManifestEntry[];
  optData: ArrayBuffer;
}> {
  const weights = await tf.io.encodeWeights(model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
  const opt = await tf.io.encodeWeights(await optimizer!.getWeights());
  return { specs: weights.specs, data: weights.data as ArrayBuffer, optSpecs: opt.specs, optData: opt.data as ArrayBuffer };
}

/** Handles one message; the worker entry posts the reply (or the error) back. */
export async function handle(m: ReplicaMessage): Promise<unknown> {
  switch (m.type) {
    case 'init':
      return init(m);
    case 'phase':
      return setPhase(m);
    case 'step':
      return step(m);
    case 'state':
      return state();
  }
}
