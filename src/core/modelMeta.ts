import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic.ts';
import { InputError } from './errors.ts';
import { loadJsonFile } from './validate.ts';

/** A frozen external ONNX encoder (a pathology foundation model) that a model's head sits on. */
export const encoderSpecSchema = z
  .object({
    /** Path of the .onnx file as the experiment named it. */
    onnx: z.string().min(1),
    /** Square input the encoder takes (pixels); tiles are resized to it. */
    inputSize: z.number().int().min(8).max(4096),
    /** Per-channel normalisation applied to RGB in [0, 1] before the encoder: (x - mean) / std. */
    mean: z.array(z.number()).length(3).default([0.485, 0.456, 0.406]),
    std: z.array(z.number().positive()).length(3).default([0.229, 0.224, 0.225]),
    /** Microns per pixel the encoder was trained at (its tiles should be cut at this resolution). */
    mpp: z.number().positive().default(0.5),
  })
  .strict();

export type EncoderSpec = z.infer<typeof encoderSpecSchema>;

const metricValue = z.number().nullable();

/** gradelab.json: what every later step needs to use a model correctly. */
export const modelMetaSchema = z
  .object({
    format: z.literal('gradelab-model/1'),
    task: z.enum(['prostate', 'breast']),
    head: z.enum(['softmax', 'ordinal', 'multitask']),
    /** Class indices map to these grade values (ISUP 0-5, Nottingham 1-3). */
    classes: z.array(z.number().int()).min(2),
    backbone: z.string(),
    width: z.number(),
    inputSize: z.number().int().positive(),
    /** Tile size and mpp the model was trained on. */
    tileSize: z.number().int().positive(),
    mpp: z.number().positive(),
    augment: z.array(z.unknown()),
    normaliser: z.unknown().nullable(),
    seed: z.number().int(),
    backend: z.string(),
    runId: z.string().nullable(),
    datasetHash: z.string(),
    configHash: z.string(),
    bestEpoch: z.number().int(),
    /** Best-epoch metrics; null where a metric was undefined (NaN), never a made-up number. */
    metrics: z.record(z.string(), metricValue),
    trainedAt: z.string(),
    /** SHA-256 of the weights (weights.bin, or head.json for a head on a frozen encoder). */
    weightsSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** Length of the penultimate feature vector: detectors and MIL heads are checked against it. */
    featureDim: z.number().int().positive().optional(),
    /** A frozen external encoder, with the SHA-256 of the file the head was trained on. */
    encoder: encoderSpecSchema.extend({ sha256: z.string() }).optional(),
  })
  .loose();

export type ModelMeta = z.infer<typeof modelMetaSchema>;

export function modelMetaPath(dir: string): string {
  return join(dir, 'gradelab.json');
}

export function readModelMeta(dir: string): ModelMeta {
  if (!existsSync(modelMetaPath(dir))) {
    if (!existsSync(dir)) throw new InputError(`${dir}: model directory not found`);
    throw new InputError(`${dir}: not a gradelab model folder (no gradelab.json); train one with \`gradelab train\``);
  }
  return loadJsonFile(modelMetaPath(dir), modelMetaSchema, 'model description (gradelab.json)');
}

export async function writeModelMeta(dir: string, meta: ModelMeta): Promise<void> {
  await writeFileAtomic(modelMetaPath(dir), `${JSON.stringify(modelMetaSchema.parse(meta), null, 2)}\n`);
}

/** What a detector, MIL head or cache was fitted on: the model's weights and feature width. */
export const fittedOnSchema = z.object({ weightsSha256: z.string(), featureDim: z.number().int().positive() });
export type FittedOn = z.infer<typeof fittedOnSchema>;

export function fittedOnOf(meta: ModelMeta): FittedOn | undefined {
  return meta.weightsSha256 && meta.featureDim ? { weightsSha256: meta.weightsSha256, featureDim: meta.featureDim } : undefined;
}

/**
 * Refuses a part of a model directory (OOD detectors, an attention-MIL head) fitted on other weights or
 * features than the directory's model now has, as after retraining into the same folder.
 */
export function checkFittedOn(file: string, recorded: FittedOn | undefined, meta: ModelMeta, refit: string): void {
  const now = fittedOnOf(meta);
  if (!recorded || !now) {
    if (!recorded)
      throw new InputError(`${file} does not record the model it was fitted on (made by an older gradelab); refit with \`${refit}\``);
    return;
  }
  if (recorded.featureDim !== now.featureDim)
    throw new InputError(`${file} was fitted on ${recorded.featureDim} features, the model has ${now.featureDim}; refit with \`${refit}\``);
  if (recorded.weightsSha256 !== now.weightsSha256)
    throw new InputError(
      `${file} was fitted on other weights (SHA-256 ${recorded.weightsSha256.slice(0, 12)}, the model's are ${now.weightsSha256.slice(0, 12)}); refit with \`${refit}\``,
    );
}
