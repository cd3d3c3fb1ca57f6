import type { Argv } from 'yargs';
import { ENGINES } from '../engine/engines.ts';
import type { ModelOpenOptions } from '../engine/index.ts';

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

/** --engine, --threads, --device and --backend: how a command runs its model(s). */
export function engineFlags<T>(c: Argv<T>) {
  return c
    .option('engine', {
      choices: ENGINES,
      default: 'auto' as const,
      describe: 'inference engine: onnx (model.onnx through ONNX Runtime), tfjs (TensorFlow.js), auto (onnx when model.onnx exists)',
    })
    .option('threads', { type: 'number', describe: 'ONNX Runtime threads (default: every core)' })
    .option('device', {
      choices: ['cpu', 'cuda'] as const,
      default: 'cpu' as const,
      describe: 'ONNX Runtime device; cuda needs the CUDA provider (see README: GPU)',
    })
    .option('backend', { choices: BACKENDS, default: 'auto' as const, describe: 'TensorFlow.js backend, when the tfjs engine runs' });
}

export function engineOptions(argv: { engine?: string; threads?: number; device?: string; backend?: string }): ModelOpenOptions {
  return {
    engine: argv.engine as ModelOpenOptions['engine'],
    threads: argv.threads,
    device: argv.device as ModelOpenOptions['device'],
    backend: argv.backend,
  };
}
