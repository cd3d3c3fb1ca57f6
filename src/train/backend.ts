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

/** What happened when a native package was imported: loaded, absent, or present but failing to load. */
export type NativeAttempt = { pkg: string; loaded: true } | { pkg: string; loaded: false; installed: boolean; error: string };

function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && !!e.message?.includes(pkg);
}

/** The first line of a load error, which names the missing library or the version mismatch. */
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();

/** Optional dependencies: present only where their install could download libtensorflow. */
export const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export async function tryTensorflow(packages = NATIVE_PACKAGES): Promise<NativeAttempt[]> {
  const attempts: NativeAttempt[] = [];
  for (const pkg of packages) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow')) return [...attempts, { pkg, loaded: true }];
      attempts.push({ pkg, loaded: false, installed: true, error: 'it loaded but registered no tensorflow backend' });
    } catch (err) {
      // Installed but unloadable (libtensorflow missing, CUDA or cuDNN mismatch) is said as such.
      attempts.push({ pkg, loaded: false, installed: !isNotInstalled(err, pkg), error: firstLine(err) });
    }
  }
  return attempts;
}

/** Why no native backend: each installed package with its own load error, or that none is installed. */
export function nativeFailure(attempts: NativeAttempt[]): string {
  const failed = attempts.filter((a): a is Extract<NativeAttempt, { loaded: false }> => !a.loaded && a.installed);
  if (!failed.length)
    return 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed (optional: their install downloads libtensorflow; the GPU build needs CUDA 11.2 and cuDNN 8.1)';
  return failed.map((a) => `${a.pkg} is installed but fails to load: ${a.error}`).join('; ');
}

let current: BackendChoice | undefined;

/**
 * Selects the tensor backend: `tensorflow` through @tensorflow/tfjs-node-gpu or -node (optional
 * dependencies, CUDA 11.2 / cuDNN 8.1 for the GPU build), else `wasm` (XNNPACK, single-threaded in
 * Node, with gradelab's training kernels registered), else `cpu` (pure JS, about 50x slower).
 */
export async function selectBackend(want: BackendName = 'auto', options: { quiet?: boolean } = {}): Promise<BackendChoice> {
  if (current && (want === 'auto' || want === current.name)) return current;
  let choice: BackendChoice | undefined;
  if (want === 'auto' || want === 'tensorflow') {
    const attempts = await tryTensorflow();
    const loaded = attempts.find((a) => a.loaded);
    if (loaded)
      choice = { name: 'tensorflow', reason: `${loaded.pkg} loaded (native TensorFlow${loaded.pkg.endsWith('gpu') ? ' with CUDA' : ''})` };
    else if (want === 'tensorflow') throw new ConfigError(`--backend tensorflow: ${nativeFailure(attempts)}. Use --backend wasm`);
    else if (!options.quiet && attempts.some((a) => !a.loaded && a.installed))
      log.warn(`native backend unavailable: ${nativeFailure(attempts)}; using wasm`);
  }
  if (!choice && (want === 'auto' || want === 'wasm')) {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmTrainingKernels();
    choice = {
      name: 'wasm',
      reason:
        want === 'wasm'
          ? 'requested'
          : 'no native TensorFlow loaded (@tensorflow/tfjs-node[-gpu] are optional); wasm runs XNNPACK kernels, one thread per replica',
    };
  }
  if (!choice) choice = { name: 'cpu', reason: 'requested (pure JavaScript kernels: slow)' };
  // Backend-independent (it only changes how the gradient is composed), so every backend gets it.
  registerBatchNormGradient();
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new ConfigError(`backend ${choice.name} failed to initialise`);
  await tf.ready();
  current = choice;
  if (!options.quiet) log.info(`backend: ${choice.name} (${choice.reason})`);
  return choice;
}
