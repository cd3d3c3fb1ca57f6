import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
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

// ONNX Runtime's own logger would print its errors to stderr a second time (with C++ locations); they
// reach the user once, through the exceptions below.
ort.env.logLevel = 'fatal';

/**
 * The first line of an ONNX Runtime error without its C++ location and signature
 * ("/onnxruntime_src/.../model.cc:187 onnxruntime::Model::Model(...) ModelProto does not have a graph."
 * becomes "ModelProto does not have a graph."): what a user can act on.
 */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const line = (
    msg
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l) ?? msg
  ).replace(/failed:(?=\S)/, 'failed: ');
  const at = /\/\S*\.(?:cc|cpp|h):\d+ /.exec(line);
  if (!at) return line;
  const rest = line.slice(at.index + at[0].length);
  // Skip the C++ signature: up to the parenthesis that closes its argument list.
  const open = rest.indexOf('(');
  let depth = 0;
  for (let i = open; open >= 0 && i < rest.length; i++) {
    if (rest[i] === '(') depth++;
    else if (rest[i] === ')' && --depth === 0) return `${line.slice(0, at.index)} ${rest.slice(i + 1).trim()}`.trim();
  }
  return `${line.slice(0, at.index)} ${rest}`.trim();
}

/** Where onnxruntime-node keeps its native libraries, the CUDA provider among them when installed. */
function ortBinDir(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

/** Why CUDA cannot run, when the provider's libraries are not even there (the usual case offline). */
function missingCudaProvider(): string | undefined {
  const dir = ortBinDir();
  const missing = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'].filter((f) => !existsSync(join(dir, f)));
  if (!missing.length) return undefined;
  return `the CUDA provider is not installed (${missing.join(', ')} missing in ${dir}); install it with \`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12\` on a machine with internet and CUDA 12`;
}

export function resolveThreads(threads?: number): number {
  if (threads === undefined) return availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError(`--threads must be a positive integer, got ${threads}`);
  return threads;
}

async function create(
  path: string,
  providers: ort.InferenceSession.ExecutionProviderConfig[],
  threads: number,
): Promise<ort.InferenceSession> {
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
    const missing = missingCudaProvider();
    if (missing) log.warn(`CUDA unavailable, running on the CPU: ${missing}`);
    else
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

export async function runSession(
  session: ort.InferenceSession,
  input: string,
  data: Float32Array,
  dims: number[],
  outputs: string[],
  where: string,
): Promise<Float32Array[]> {
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
