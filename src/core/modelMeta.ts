import { existsSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from './atomic.ts';
import { InputError } from './errors.ts';
import { loadJsonFile } from './validate.ts';
import { modelFile } from './modelFiles.ts';

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

/** How the tiles a model was trained on were cut and stored: a slide is tiled the same way to be graded. */
export const tilingSchema = z
  .object({
    stride: z.number().int().positive(),
    minTissue: z.number().min(0).max(1),
    tissueMethod: z.enum(['saturation', 'od']),
    encoding: z.enum(['jpeg', 'raw', 'coords']),
    quality: z.number().int().min(1).max(100),
  })
  .strict();
export type ModelTiling = z.infer<typeof tilingSchema>;

/** What a model's input is: RGB scaled to [0, 1], then (x - mean) / std per channel. */
export const inputNormalisationSchema = z
  .object({ mean: z.array(z.number()).length(3), std: z.array(z.number().positive()).length(3) })
  .strict();

/** gradelab.json: what every later step needs to use a model correctly. */
export const modelMetaSchema = z
  .object({
    format: z.literal('gradelab-model/1'),
    task: z.enum(['prostate', 'breast']),
    head: z.enum(['softmax', 'ordinal', 'multitask', 'patterns']),
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
    encoder: encoderSpecSchema.extend({ sha256: z.string(), fixedBatch: z.number().int().positive().optional() }).optional(),
    /**
     * Features computed elsewhere (CLAM, TRIDENT) that the head was trained on: the model scores only
     * tiles whose features a dataset holds under this identity (no encoder runs in gradelab).
     */
    importedFeatures: z
      .object({ tool: z.enum(['clam', 'trident']), name: z.string(), sha256: z.string(), dim: z.number().int().positive() })
      .strict()
      .optional(),
    /**
     * Fitted by `gradelab calibrate` on validation slides. Temperature scaling: every predictor divides
     * the logits by `temperature` before the head's probabilities. A pattern model ('softness'): its
     * rule's softness was multiplied by `temperature` (patternGrading holds the product), and its tile
     * logits are left as they are: scaling them would move the pattern areas its rule was chosen on.
     */
    calibration: z
      .object({
        method: z.enum(['temperature', 'softness']),
        temperature: z.number().positive(),
        split: z.string(),
        fold: z.number().int(),
        slides: z.number().int(),
        fittedAt: z.string(),
      })
      .strict()
      .optional(),
    /** Scanners and sites of the training and validation data (models from before 0.2 lack it). */
    scope: z
      .object({
        scanners: z.array(z.string()),
        sites: z.array(z.string()),
        /** Native microns per pixel of the training slides, lowest and highest (where tiling recorded it). */
        slideMpp: z.tuple([z.number().positive(), z.number().positive()]).optional(),
      })
      .strict()
      .optional(),
    /** The training tiles' stride, tissue rule and storage (models from before 0.2 lack it). */
    tiling: tilingSchema.optional(),
    inputNormalisation: inputNormalisationSchema.optional(),
    /** The training dataset's folder, relative to the model directory. */
    dataset: z.string().optional(),
    /**
     * A pattern head's rule from pattern areas to grade group, chosen on validation slides after
     * training (the ISUP rule's thresholds by QWK, the softness of its probabilities by log-likelihood).
     */
    patternGrading: z
      .object({
        rule: z
          .object({
            minCancerShare: z.number().min(0).max(1),
            minPatternShare: z.number().min(0).max(1),
            lowerSecondaryShare: z.number().min(0).max(1),
          })
          .strict(),
        softness: z.number().positive(),
        /** Where the rule was chosen: split, fold, slides, and the validation QWK and log-loss it reached. */
        chosenOn: z
          .object({ split: z.string(), fold: z.number().int(), slides: z.number().int(), qwk: metricValue, logLoss: metricValue })
          .strict(),
      })
      .strict()
      .optional(),
  })
  .loose()
  .refine((m) => m.head !== 'patterns' || m.patternGrading !== undefined, {
    message: 'a patterns head needs its patternGrading (the rule from pattern areas to grade group)',
    path: ['patternGrading'],
  });

export type ModelMeta = z.infer<typeof modelMetaSchema>;

/** The temperature a model's logits are divided by: temperature scaling's, 1 for an uncalibrated or pattern model. */
export function logitTemperature(meta: Partial<Pick<ModelMeta, 'calibration'>>): number {
  return meta.calibration?.method === 'temperature' ? meta.calibration.temperature : 1;
}

export function modelMetaPath(dir: string): string {
  return modelFile(dir, 'meta');
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

/** The tiling of models trained before it was recorded: gradelab tile's defaults then. */
export const DEFAULT_TILING: ModelTiling = { stride: 0, minTissue: 0.5, tissueMethod: 'saturation', encoding: 'jpeg', quality: 90 };

/** The model's recorded tiling (a stride of 0 in the default means: the tile size, no overlap). */
export function modelTiling(meta: ModelMeta): ModelTiling {
  const t = meta.tiling ?? DEFAULT_TILING;
  return { ...t, stride: t.stride || meta.tileSize };
}

/** What a set of tiles is, for the compatibility check: its task and how it was tiled. */
export interface TileSetDescription {
  /** The dataset folder (or other source) named in messages. */
  where: string;
  task: string;
  tileSize: number;
  mpp: number;
}

/** mpp values within this share of each other are the same resolution (scanners report 0.2499 and 0.2502). */
const MPP_TOLERANCE = 0.02;

const sameMpp = (a: number, b: number) => Math.abs(a - b) <= MPP_TOLERANCE * Math.max(a, b);

/**
 * Refuses to apply a model to tiles it was not trained for: another task (label scheme), another tile
 * size or resolution. With `resample`, tiles of another size are accepted when they cover the same
 * field of view (tile size x mpp): the predictor resizes every tile to the network's input anyway.
 */
export function checkModelFitsTiles(
  modelDir: string,
  meta: ModelMeta,
  tiles: TileSetDescription,
  options: { resample?: boolean } = {},
): void {
  if (tiles.task !== meta.task)
    throw new InputError(
      `${tiles.where}: ${tiles.task} tiles, but the model ${modelDir} grades ${meta.task} (${meta.classes.length} classes)`,
    );
  if (tiles.tileSize === meta.tileSize && sameMpp(tiles.mpp, meta.mpp)) return;
  const fov = (size: number, mpp: number) => size * mpp;
  const sameView = sameMpp(fov(tiles.tileSize, tiles.mpp), fov(meta.tileSize, meta.mpp));
  if (options.resample && sameView) return;
  throw new InputError(
    `${tiles.where}: tiles of ${tiles.tileSize} px at ${tiles.mpp} um/px, but the model ${modelDir} takes ${meta.tileSize} px at ${meta.mpp} um/px; ` +
      (sameView
        ? 'they cover the same field of view: pass --resample to resize them, or retile'
        : `retile the slides with \`gradelab tile --tile-size ${meta.tileSize} --mpp ${meta.mpp}\``),
  );
}

/**
 * Refuses to compare two models that do not grade the same thing from the same input (a robustness
 * baseline, a paired comparison): task, classes, tile size and resolution must agree.
 */
export function checkSameInput(a: { dir: string; meta: ModelMeta }, b: { dir: string; meta: ModelMeta }): void {
  const what = (m: ModelMeta) => `${m.task} (classes ${m.classes.join(',')}), ${m.tileSize} px at ${m.mpp} um/px`;
  if (
    a.meta.task !== b.meta.task ||
    a.meta.classes.join() !== b.meta.classes.join() ||
    a.meta.tileSize !== b.meta.tileSize ||
    !sameMpp(a.meta.mpp, b.meta.mpp)
  )
    throw new InputError(`${b.dir}: grades ${what(b.meta)}, but ${a.dir} grades ${what(a.meta)}; a baseline must take the same input`);
}

/**
 * Refuses, in one line, work that feeds a model pixels (robustness suites, heatmaps, audits, export)
 * when its head sits on features imported from another toolkit: gradelab cannot compute them.
 */
export function requirePixelModel(dir: string, meta: ModelMeta, what: string): void {
  const f = meta.importedFeatures;
  if (f)
    throw new InputError(
      `${dir}: a head on ${f.tool} features "${f.name}" cannot run on pixels, which ${what} needs; use an ONNX encoder (model.backbone: {onnx: ...}) for it`,
    );
}

/** How far a slide's native mpp may lie outside the training slides' range (a factor) and still be in scope. */
export const SLIDE_MPP_TOLERANCE = 1.25;

/** The acquisition conditions a model was trained and validated on: its intended use, as the data says. */
export type ModelScope = NonNullable<ModelMeta['scope']>;

/** The scanners and sites of a model's training and validation tiles (one pass; no copy of the tiles). */
export function scopeOf(tiles: Iterable<{ scanner: string; site: string }>): ModelScope {
  const scanners = new Set<string>();
  const sites = new Set<string>();
  for (const t of tiles) {
    scanners.add(t.scanner);
    sites.add(t.site);
  }
  return { scanners: [...scanners].sort(), sites: [...sites].sort() };
}

/**
 * Why a slide is outside a model's intended use, in words (empty when it is inside): a scanner the model
 * was never trained on, or an out-of-distribution flag (which covers the quality checks of a qc detector).
 * Models trained before scopes were recorded check the OOD flag only.
 */
export function scopeProblems(
  meta: Pick<ModelMeta, 'scope'>,
  slide: { scanner: string; oodFlag?: boolean | null; slideMpp?: number },
): string[] {
  const out: string[] = [];
  if (meta.scope && !meta.scope.scanners.includes(slide.scanner))
    out.push(`scanner "${slide.scanner}" is not one the model was trained on (${meta.scope.scanners.join(', ')})`);
  const range = meta.scope?.slideMpp;
  // A scan at another magnification (20x against 40x is a factor 2) is another acquisition, even when
  // its tiles are resampled to the model's mpp.
  if (
    range &&
    slide.slideMpp !== undefined &&
    (slide.slideMpp < range[0] / SLIDE_MPP_TOLERANCE || slide.slideMpp > range[1] * SLIDE_MPP_TOLERANCE)
  )
    out.push(
      `scanned at ${slide.slideMpp} um/px; the model's training slides were at ${range[0] === range[1] ? range[0] : `${range[0]}-${range[1]}`} um/px`,
    );
  if (slide.oodFlag) out.push('flagged out of distribution');
  return out;
}
