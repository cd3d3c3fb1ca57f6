import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { ConfigError, log } from '../core/index.ts';
import { registerBatchNormGradient } from './gradients.ts';
import { registerWasmTrainingKernels } from './kernels.ts';

// tfjs's console banners ("install our node backend") would repeat what selectBackend says in one line.
tf.env().set('PROD', true);

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendChoice {
  name: 'tensorflow' | 'wasm' | 'cpu';
  /** Which package provided it and why this one: printed once, recorded on the run. */
  reason: string;
}

async function tryTensorflow(): Promise<string | undefined> {
  // Optional dependencies: present only where their install could download libtensorflow.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow')) return pkg;
    } catch {
      // Not installed, or libtensorflow failed to load (CUDA/cuDNN mismatch): try the next.
    }
  }
  return undefined;
}

let current: BackendChoice | undefined;

/**
 * Selects the tensor backend: `tensorflow` through @tensorflow/tfjs-node-gpu or -node (optional
 * dependencies, CUDA 11.2 / cuDNN 8.1 for the GPU build), else `wasm` (XNNPACK, single-threaded in
 * Node, with gradelab's training kernels registered), else `cpu` (pure JS, about 50x slower).
 */
export async function selectBackend(want: BackendName = 'auto'): Promise<BackendChoice> {
  if (current && (want === 'auto' || want === current.name)) return current;
  let choice: BackendChoice | undefined;
  if (want === 'auto' || want === 'tensorflow') {
    const pkg = await tryTensorflow();
    if (pkg) choice = { name: 'tensorflow', reason: `${pkg} loaded (native TensorFlow${pkg.endsWith('gpu') ? ' with CUDA' : ''})` };
    else if (want === 'tensorflow') {
      throw new ConfigError('--backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed or loads (they download libtensorflow at install time; the GPU build needs CUDA 11.2 and cuDNN 8.1). Use --backend wasm');
    }
  }
  if (!choice && (want === 'auto' || want === 'wasm')) {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmTrainingKernels();
    choice = { name: 'wasm', reason: want === 'wasm' ? 'requested' : 'no native TensorFlow package installed (@tensorflow/tfjs-node[-gpu] are optional); wasm runs XNNPACK kernels on one thread' };
  }
  if (!choice) choice = { name: 'cpu', reason: 'requested (pure JavaScript kernels: slow)' };
  // Backend-independent (it only changes how the gradient is composed), so every backend gets it.
  registerBatchNormGradient();
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new ConfigError(`backend ${choice.name} failed to initialise`);
  await tf.ready();
  current = choice;
  log.info(`backend: ${choice.name} (${choice.reason})`);
  return choice;
}
