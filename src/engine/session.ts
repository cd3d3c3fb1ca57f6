import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { ConfigError, InputError, log } from '../core/index.ts';

export type Device = 'cpu' | 'cuda';

export interface EngineOptions {
  /** Intra-op threads (default: every core). */
  threads?: number;
  device?: Device;
}

export interface OpenSession {
  session: ort.InferenceSession;
  /** "onnx (cpu, 2 threads)", "onnx (cuda)": printed once and recorded with results. */
  description: string;
}

/** First line of an error, without ORT's source locations: what a user can act on. */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n').map((l) => l.trim()).find((l) => l) ?? msg;
}

export function resolveThreads(threads?: number): number {
  if (threads === undefined) return availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError(`--threads must be a positive integer, got ${threads}`);
  return threads;
}

async function create(path: string, providers: ort.InferenceSession.ExecutionProviderConfig[], threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    executionProviders: providers,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Warnings about unused initialisers and the like are not the user's business; errors still throw.
    logSeverityLevel: 3,
    // Idle intra-op threads would otherwise spin for a while after each run, taking the cores that
    // decoding and perturbation on the main thread need between batches.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

/**
 * Opens an ONNX Runtime session. CUDA is tried only when asked for: where its provider is missing or
 * fails to load (no CUDA 12 provider installed, driver or cuDNN mismatch), one line gives ONNX Runtime's
 * own error and the CPU runs instead. A file ONNX Runtime cannot load is the user's: one line, exit 2.
 */
export async function openSession(path: string, options: EngineOptions = {}): Promise<OpenSession> {
  const threads = resolveThreads(options.threads);
  if (options.device === 'cuda') {
    try {
      const session = await create(path, [{ name: 'cuda', deviceId: 0 }], threads);
      return { session, description: 'onnx (cuda)' };
    } catch (err) {
      log.warn(`CUDA unavailable, running on the CPU: ${firstLine(err)}`);
    }
  }
  try {
    const session = await create(path, ['cpu'], threads);
    return { session, description: `onnx (cpu, ${threads} thread${threads > 1 ? 's' : ''})` };
  } catch (err) {
    throw new InputError(`${path}: ONNX Runtime cannot load it: ${firstLine(err)}`, { cause: err });
  }
}

export async function runSession(session: ort.InferenceSession, input: string, data: Float32Array, dims: number[], outputs: string[], where: string): Promise<Float32Array[]> {
  const feeds = { [input]: new ort.Tensor('float32', data, dims) };
  let result: ort.InferenceSession.ReturnType;
  try {
    result = await session.run(feeds, outputs);
  } catch (err) {
    throw new InputError(`${where}: ONNX Runtime failed on a batch of [${dims.join(', ')}]: ${firstLine(err)}`, { cause: err });
  }
  return outputs.map((name) => {
    const t = result[name];
    if (t.type !== 'float32') throw new InputError(`${where}: output "${name}" is ${t.type}, expected float32`);
    return t.data as Float32Array;
  });
}

export { ort };
