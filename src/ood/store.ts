import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  checkFittedOn,
  type FittedOn,
  fittedOnOf,
  fittedOnSchema,
  InputError,
  loadJsonFile,
  modelFile,
  readModelMeta,
  writeFileAtomic,
} from '../core/index.ts';
import { createDetector, type OodDetector } from './detectors.ts';

export interface StoredDetector {
  name: string;
  params: Record<string, number>;
  /** Tile-level threshold accepting `accept` of in-distribution validation tiles. */
  threshold: number;
  /** Slide-level threshold on top-k aggregated scores, calibrated the same way. */
  slideThreshold: number;
  json: Record<string, unknown>;
  arrays: Record<string, string>;
}

export interface OodBundle {
  format: 'gradelab-ood/1';
  accept: number;
  /** The detector whose scores gradelab predict writes as ood_score / ood_flag. */
  primary: string;
  aggregation: { method: 'topk'; k: number };
  detectors: StoredDetector[];
  /** The model whose features the detectors were fitted on. */
  fittedOn?: FittedOn;
}

const bundleSchema = z.object({
  format: z.literal('gradelab-ood/1'),
  accept: z.number().gt(0).lt(1),
  primary: z.string(),
  aggregation: z.object({ method: z.literal('topk'), k: z.number().int().positive() }),
  detectors: z
    .array(
      z.object({
        name: z.string(),
        params: z.record(z.string(), z.number()),
        threshold: z.number(),
        slideThreshold: z.number(),
        json: z.record(z.string(), z.unknown()),
        arrays: z.record(z.string(), z.string()),
      }),
    )
    .min(1),
  fittedOn: fittedOnSchema.optional(),
});

export async function saveOodBundle(
  modelDir: string,
  bundle: Omit<OodBundle, 'detectors'>,
  fitted: { detector: OodDetector; params: Record<string, number>; threshold: number; slideThreshold: number }[],
): Promise<void> {
  const dir = modelFile(modelDir, 'ood');
  await mkdir(dir, { recursive: true });
  const detectors: StoredDetector[] = [];
  for (const f of fitted) {
    const { json, arrays } = f.detector.state();
    const files: Record<string, string> = {};
    for (const [key, arr] of Object.entries(arrays)) {
      const file = `${f.detector.name}-${key}.f32`;
      await writeFileAtomic(join(dir, file), new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
      files[key] = file;
    }
    detectors.push({
      name: f.detector.name,
      params: f.params,
      threshold: f.threshold,
      slideThreshold: f.slideThreshold,
      json,
      arrays: files,
    });
  }
  await writeFileAtomic(
    modelFile(modelDir, 'oodBundle'),
    JSON.stringify({ ...bundle, detectors, fittedOn: fittedOnOf(readModelMeta(modelDir)) } satisfies OodBundle, null, 2),
  );
}

export function hasOodBundle(modelDir: string): boolean {
  return existsSync(modelFile(modelDir, 'oodBundle'));
}

export function loadOodBundle(modelDir: string): { bundle: OodBundle; detectors: Map<string, OodDetector> } {
  const dir = modelFile(modelDir, 'ood');
  const p = modelFile(modelDir, 'oodBundle');
  if (!existsSync(p))
    throw new InputError(`${modelDir}: no fitted OOD detector (run \`gradelab ood fit --model ${modelDir} --data DATASET\`)`);
  const bundle = loadJsonFile(p, bundleSchema, 'set of OOD detectors') as OodBundle;
  checkFittedOn(p, bundle.fittedOn, readModelMeta(modelDir), `gradelab ood fit --model ${modelDir} --data DATASET`);
  if (!bundle.detectors.some((d) => d.name === bundle.primary))
    throw new InputError(`${p}: the primary detector ${bundle.primary} is not among those stored`);
  const detectors = new Map<string, OodDetector>();
  for (const s of bundle.detectors) {
    const d = createDetector(s.name, s.params);
    const arrays: Record<string, Float32Array> = {};
    for (const [key, file] of Object.entries(s.arrays)) {
      if (!existsSync(join(dir, file)))
        throw new InputError(`${join(dir, file)}: missing (detector ${s.name}); refit with \`gradelab ood fit\``);
      const b = readFileSync(join(dir, file));
      arrays[key] = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
    d.load(s.json, arrays);
    detectors.set(s.name, d);
  }
  return { bundle, detectors };
}
