import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { GradelabError, workerEntry } from '../core/index.ts';
import type { TrainConfig } from './config.ts';
import { readOptimizerFiles, writeOptimizerFiles } from './modelDir.ts';
import { CONTROL_WORDS, type ReplicaMessage, type StepReport } from './replicaTask.ts';
import type { StepBatch } from './step.ts';
import type { Trainer } from './trainer.ts';
import { sliceTargets } from './patternTargets.ts';

const WORKER = pathToFileURL(workerEntry(import.meta.url, 'replicaWorker'));
/** Index of the abort word in the control buffer (replicaTask.ts reads it while waiting at the barrier). */
const ABORT = 2;

type Reply = { ok: true; result: unknown } | { ok: false; error: string; stack?: string };

/** Thrown when a replica fails: its message names the replica and its own error, on one line. */
export class ReplicaError extends GradelabError {
  constructor(message: string) {
    super(message, { code: 'REPLICA_FAILED' });
  }
}

/** One worker thread with one request in flight at a time. */
class Replica {
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  readonly ready: Promise<void>;

  constructor(
    readonly index: number,
    script: URL,
    private readonly onFailure: () => void,
  ) {
    this.worker = new Worker(script);
    this.ready = new Promise((resolve, reject) => {
      this.pending = { resolve: () => resolve(), reject };
    });
    this.worker.on('message', (m: Reply | { ready: true }) => {
      const p = this.pending;
      this.pending = undefined;
      if ('ready' in m) p?.resolve(undefined);
      else if (m.ok) p?.resolve(m.result);
      else p?.reject(this.fail(m.error));
    });
    this.worker.on('error', (err) => this.pending?.reject(this.fail(err.message)));
    this.worker.on('exit', (code) => {
      if (this.pending) this.pending.reject(this.fail(`its thread exited (code ${code})`));
      else if (!this.failure && !this.closing) this.fail(`its thread exited (code ${code})`);
    });
  }

  private readonly worker: Worker;
  closing = false;

  private fail(message: string): Error {
    this.failure ??= new ReplicaError(`training replica ${this.index + 1} failed: ${message.split('\n')[0]}`);
    this.onFailure();
    return this.failure;
  }

  request<T>(message: ReplicaMessage, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pending = { resolve: resolve as (v: unknown) => void, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}

/** Splits n rows into `parts` contiguous shards whose sizes differ by at most one (the first ones larger). */
export function shardSizes(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, r) => Math.floor(n / parts) + (r < n % parts ? 1 : 0));
}

/**
 * Data-parallel training on worker threads, one wasm backend and model replica each. Every step the batch
 * is cut into fixed shards (by row, in order), each replica computes its shard's gradients, the replicas
 * sum them through shared memory in shard order, and each applies the same update: the weights stay
 * bit-identical across replicas, and the same seed and replica count give the same bytes.
 *
 * Batch norm works as in PyTorch's DistributedDataParallel: each replica normalises with its own shard's
 * statistics, and the running statistics kept are replica 1's (DDP broadcasts rank 0's buffers).
 */
export class ReplicaTrainer implements Trainer {
  readonly description: string;
  private phase: string | undefined;
  /** Per step, each replica's timings (for the bench). */
  readonly reports: StepReport[][] = [];

  private constructor(
    private readonly replicas: Replica[],
    private readonly control: Int32Array,
    private readonly layerNames: string[],
  ) {
    this.description = `${replicas.length} replicas`;
  }

  /** `script` is the worker entry: replicaWorker.mjs, or a test's wrapper around it. */
  static async start(model: tfl.LayersModel, config: TrainConfig, k: number, count: number, script: URL = WORKER): Promise<ReplicaTrainer> {
    const params = model.weights.reduce((a, w) => a + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
    // One gradient slot per replica and the reduced result after them.
    const grads = new SharedArrayBuffer((count + 1) * params * 4);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    let trainer: ReplicaTrainer | undefined;
    const replicas: Replica[] = Array.from({ length: count }, (_, i) => new Replica(i, script, () => trainer?.abort()));
    trainer = new ReplicaTrainer(
      replicas,
      new Int32Array(control),
      model.layers.map((l) => l.name),
    );
    try {
      await Promise.all(replicas.map((r) => r.ready));
      const topology = model.toJSON(undefined, false) as object;
      const { data, specs } = await tf.io.encodeWeights(model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
      await Promise.all(
        replicas.map((r, index) =>
          r.request({ type: 'init', topology, specs, data: data as ArrayBuffer, config, k, index, replicas: count, grads, control }),
        ),
      );
    } catch (err) {
      await trainer.close();
      throw err;
    }
    return trainer;
  }

  /** Wakes replicas waiting at the barrier so that they give up: one failure ends the step everywhere. */
  private abort(): void {
    Atomics.store(this.control, ABORT, 1);
    Atomics.notify(this.control, 1);
  }

  private async all<T>(send: (r: Replica) => Promise<T>): Promise<T[]> {
    const settled = await Promise.allSettled(this.replicas.map(send));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await this.close();
      // The first replica to fail is the cause; the others only saw the abort.
      const cause = settled
        .map((s) => (s.status === 'rejected' ? (s.reason as Error) : undefined))
        .find((e) => e && !/another replica failed/.test(e.message));
      throw cause ?? failure.reason;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  async setPhase(phase: string, trainable: (layerName: string) => boolean, restore?: string): Promise<void> {
    if (phase === this.phase && !restore) return;
    this.phase = phase;
    const restored = restore ? readOptimizerFiles(restore) : undefined;
    await this.all((r) => r.request({ type: 'phase', phase, trainable: this.layerNames.filter(trainable), restore: restored }));
  }

  async step(batch: StepBatch, lr: number): Promise<number> {
    const { n, height, width, data } = batch.x;
    const sizes = shardSizes(n, this.replicas.length);
    const px = height * width * 3;
    let row = 0;
    const reports = await this.all((r) => {
      const start = row;
      const end = (row += sizes[r.index]);
      const shard = data.slice(start * px, end * px);
      const message: ReplicaMessage = {
        type: 'step',
        data: shard,
        n: end - start,
        height,
        width,
        labels: batch.labels.slice(start, end),
        extra: batch.extra?.map((e) => e.slice(start, end)),
        patterns: batch.patterns && sliceTargets(batch.patterns, start, end),
        lr,
        sizes,
      };
      return r.request<StepReport>(message, [shard.buffer as ArrayBuffer]);
    });
    this.reports.push(reports);
    // The batch's mean loss from the shard means, weighted by shard size.
    return reports.reduce((a, rep, r) => a + (rep.loss * sizes[r]) / n, 0);
  }

  async sync(model: tfl.LayersModel): Promise<void> {
    const s = await this.replicas[0].request<ReplicaState>({ type: 'state' });
    const named = tf.io.decodeWeights(s.data, s.specs);
    model.setWeights(model.weights.map((w) => named[w.originalName]));
    tf.dispose(Object.values(named));
  }

  async saveOptimizer(dir: string): Promise<void> {
    const s = await this.replicas[0].request<ReplicaState>({ type: 'state' });
    await writeOptimizerFiles(dir, { specs: s.optSpecs, data: s.optData });
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.terminate()));
  }
}

interface ReplicaState {
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
  optSpecs: tf.io.WeightsManifestEntry[];
  optData: ArrayBuffer;
}
