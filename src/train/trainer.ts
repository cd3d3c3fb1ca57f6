import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainConfig } from './config.ts';
import { loadOptimizer, saveOptimizer } from './modelDir.ts';
import { applyGradients, lossAndGradients, makeOptimizer, trainableVariables, type StepBatch } from './step.ts';

/**
 * How fit() trains: one model in this thread, or replicas in worker threads (replicas.ts). Both take
 * the same batches and apply the same update rule; fit() reads the model's weights through sync().
 */
export interface Trainer {
  /** "1 thread" or "2 replicas": recorded with the run. */
  readonly description: string;
  /**
   * Sets which layers train. A new phase (the backbone unfrozen) starts a new optimizer, because Adam's
   * moments are kept per variable position; `restore` loads the moments a checkpoint saved.
   */
  setPhase(phase: string, trainable: (layerName: string) => boolean, restore?: string): Promise<void>;
  /** One update from a batch; the batch's mean loss. */
  step(batch: StepBatch, lr: number): Promise<number>;
  /** Brings the training weights (batch-norm statistics included) into `model` for validation and checkpoints. */
  sync(model: tfl.LayersModel): Promise<void>;
  /** Writes the optimizer's state into a checkpoint folder. */
  saveOptimizer(dir: string): Promise<void>;
  close(): Promise<void>;
}

/** Trains the model in this thread (one replica; native TensorFlow uses its own threads). */
export class LocalTrainer implements Trainer {
  readonly description = 'one thread';
  private optimizer: tf.Optimizer | undefined;
  private phase: string | undefined;
  private vars: tf.Variable[] = [];

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly config: TrainConfig,
    private readonly k: number,
  ) {}

  async setPhase(phase: string, trainable: (layerName: string) => boolean, restore?: string): Promise<void> {
    for (const layer of this.model.layers) layer.trainable = trainable(layer.name);
    this.vars = trainableVariables(this.model);
    if (phase === this.phase && !restore) return;
    this.optimizer?.dispose();
    this.optimizer = makeOptimizer(this.config);
    this.phase = phase;
    if (restore) await loadOptimizer(this.optimizer, restore);
  }

  async step(batch: StepBatch, lr: number): Promise<number> {
    const { loss, grads } = lossAndGradients(this.model, this.vars, batch, this.config, this.k);
    try {
      applyGradients(this.optimizer!, this.vars, grads, lr, this.config);
    } finally {
      tf.dispose(grads);
    }
    return loss;
  }

  async sync(): Promise<void> {
    // The model trains in place.
  }

  async saveOptimizer(dir: string): Promise<void> {
    await saveOptimizer(this.optimizer!, dir);
  }

  async close(): Promise<void> {
    this.optimizer?.dispose();
  }
}

/** Fewest tiles a replica gets from a batch under `auto`: smaller shards spend more on the all-reduce than they save. */
export const MIN_TILES_PER_REPLICA = 4;

/**
 * How many replicas train: `auto` is one per core on wasm (at least MIN_TILES_PER_REPLICA tiles each),
 * one on a native backend, which threads its own kernels; an explicit count is kept within the batch.
 */
export function replicaCount(want: number | 'auto', backend: string, batchSize: number, cores = availableParallelism()): number {
  if (backend !== 'wasm') return 1;
  if (want === 'auto') return Math.max(1, Math.min(cores, Math.floor(batchSize / MIN_TILES_PER_REPLICA)));
  return Math.max(1, Math.min(want, batchSize));
}
