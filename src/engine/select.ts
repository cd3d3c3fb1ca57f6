import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, InputError, log, readModelMeta, type ModelPredictor } from '../core/index.ts';
import { ImportedFeaturesHead } from './importedHead.ts';
import { MODEL_ONNX, OnnxPredictor } from './onnxPredictor.ts';
import type { EngineOptions } from './session.ts';

import { ENGINES, type EngineName } from './engines.ts';

export { ENGINES, type EngineName };

export interface ModelOpenOptions extends EngineOptions {
  engine?: EngineName;
  /** TensorFlow.js backend when the tfjs engine runs (auto, tensorflow, wasm, cpu). */
  backend?: string;
}

/** Opens a model directory with TensorFlow.js: registered by whoever composes the library with train. */
export type TfjsOpener = (dir: string, options: ModelOpenOptions) => Promise<ModelPredictor>;
let tfjsOpener: TfjsOpener | undefined;

/**
 * Registers the TensorFlow.js engine. Engine sits below train (train's ONNX export and heads use it), so
 * it cannot import train; the composition layer (src/workflows, the public API) registers an opener that
 * imports train lazily, and ONNX-only work never loads TensorFlow.js.
 */
export function registerTfjsEngine(opener: TfjsOpener): void {
  tfjsOpener = opener;
}

/**
 * Opens a model directory for inference. `auto` runs model.onnx through ONNX Runtime when the directory
 * has one and TensorFlow.js otherwise; `onnx` and `tfjs` insist. TensorFlow.js is imported only when it
 * runs, so ONNX-only work never loads it. Says once which engine runs and how.
 */
export async function openModel(dir: string, options: ModelOpenOptions = {}): Promise<ModelPredictor> {
  const engine = options.engine ?? 'auto';
  if (!(ENGINES as readonly string[]).includes(engine))
    throw new ConfigError(`--engine must be one of ${ENGINES.join(', ')}, got "${engine}"`);
  const meta = readModelMeta(dir);
  const hasOnnx = existsSync(join(dir, MODEL_ONNX));
  let model: ModelPredictor;
  if (meta.importedFeatures) {
    model = new ImportedFeaturesHead(dir, { ...meta, importedFeatures: meta.importedFeatures });
  } else if (engine === 'onnx' || (engine === 'auto' && hasOnnx)) {
    model = await OnnxPredictor.load(dir, meta, options);
  } else {
    if (meta.encoder)
      throw new InputError(
        `${dir}: a head on the frozen encoder ${meta.encoder.onnx} runs on ONNX Runtime only${hasOnnx ? ' (use --engine onnx or auto)' : `, and ${MODEL_ONNX} is missing: retrain it`}`,
      );
    if (engine === 'auto')
      log.info(
        `${dir} has no ${MODEL_ONNX}: running TensorFlow.js (\`gradelab export --model ${dir}\` makes inference several times faster)`,
      );
    if (!tfjsOpener)
      throw new Error(`${dir}: no TensorFlow.js engine registered (open models through gradelab's workflows or its public API)`);
    model = await tfjsOpener(dir, options);
  }
  log.info(`engine: ${model.engine}`);
  return model;
}
