import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InputError, MODEL_FILES, modelFile, writeFileAtomic } from '../core/index.ts';

/** Writes a LayersModel in TF.js format (model.json + weights.bin) into a folder. */
export async function saveLayersModel(model: tfl.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData =
        artifacts.weightData instanceof ArrayBuffer
          ? artifacts.weightData
          : tf.io.concatenateArrayBuffers(artifacts.weightData as ArrayBuffer[]);
      await writeFileAtomic(modelFile(dir, 'weights'), new Uint8Array(weightData));
      await writeFileAtomic(
        modelFile(dir, 'layers'),
        JSON.stringify({
          modelTopology: artifacts.modelTopology,
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
          convertedBy: null,
          weightsManifest: [{ paths: [MODEL_FILES.weights], weights: artifacts.weightSpecs }],
        }),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

export async function loadLayersModel(dir: string): Promise<tfl.LayersModel> {
  const jsonPath = modelFile(dir, 'layers');
  if (!existsSync(jsonPath)) throw new InputError(`${dir}: not a TF.js model folder (no model.json)`);
  let json: { modelTopology: unknown; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    throw new InputError(`${jsonPath}: not valid JSON: ${(err as Error).message}`);
  }
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const b = readFileSync(join(dir, p));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }),
  );
  try {
    return await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology as object,
        weightSpecs: specs,
        weightData: tf.io.concatenateArrayBuffers(buffers),
      }),
    );
  } catch (err) {
    throw new InputError(`${dir}: cannot load the TF.js model: ${(err as Error).message}`);
  }
}

/** Replaces a folder atomically: build beside it, then swap. */
export async function replaceDir(target: string, build: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await build(tmp);
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) await rename(target, old);
  await rename(tmp, target);
  await rm(old, { recursive: true, force: true });
}

/** Optimizer slots (Adam moments, momentum) as named tensors, encoded like TF.js weights. */
export interface EncodedTensors {
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
}

export async function writeOptimizerFiles(dir: string, { specs, data }: EncodedTensors): Promise<void> {
  await writeFile(join(dir, 'optimizer.bin'), new Uint8Array(data));
  await writeFile(join(dir, 'optimizer.json'), JSON.stringify(specs));
}

export function readOptimizerFiles(dir: string): EncodedTensors {
  const b = readFileSync(join(dir, 'optimizer.bin'));
  return {
    specs: JSON.parse(readFileSync(join(dir, 'optimizer.json'), 'utf8')),
    data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer,
  };
}

export async function saveOptimizer(optimizer: tf.Optimizer, dir: string): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(await optimizer.getWeights());
  await writeOptimizerFiles(dir, { specs, data: data as ArrayBuffer });
}

/** Loads saved slots into an optimizer; Adam and momentum match them to variables by position. */
export async function restoreOptimizer(optimizer: tf.Optimizer, { specs, data }: EncodedTensors): Promise<void> {
  const map = tf.io.decodeWeights(data, specs);
  await optimizer.setWeights(specs.map((s) => ({ name: s.name, tensor: map[s.name] })));
}

export async function loadOptimizer(optimizer: tf.Optimizer, dir: string): Promise<void> {
  await restoreOptimizer(optimizer, readOptimizerFiles(dir));
}
