import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildPipeline } from '../augment/index.ts';
import { ConfigError, encoderEntry, encoderSpecSchema, loadYamlFile, readModelMeta, zodProblem } from '../core/index.ts';
import { modelRegistry } from './models.ts';

/** An experiment file (experiments/*.yaml), validated so a typo is an error with its path. */
/** A head on features computed elsewhere (CLAM, TRIDENT) and imported into the dataset under a name. */
export const importedBackboneSchema = z.object({ features: z.string().min(1) }).strict();

/** A registry encoder's ONNX export (`gradelab encoders list`): input, normalisation and mpp come from the registry. */
export const registryBackboneSchema = z.object({ registry: z.string().min(1), onnx: z.string().min(1) }).strict();

export const trainConfigSchema = z
  .object({
    name: z.string().min(1),
    task: z.enum(['prostate', 'breast']),
    data: z
      .object({
        /** A tile dataset folder (gradelab tile), or a manifest CSV to tile first. */
        dataset: z.string(),
        fold: z.number().int().min(0).default(0),
        /** Make the split if the dataset has none. */
        folds: z.number().int().min(2).default(5),
        splitSeed: z.number().int().default(1),
        /** Train and validate only on these sites (stain-shift experiments); the test partition keeps all. */
        trainSites: z.array(z.string()).optional(),
        /** Make the dataset when it does not exist: synthetic slides, then tiles. */
        synth: z
          .object({
            slides: z.number().int().min(2),
            size: z.number().int().min(512).default(1536),
            sites: z.number().int().min(1).max(6).default(3),
            anomalies: z.number().min(0).max(1).default(0.1),
            seed: z.number().int().default(1),
          })
          .strict()
          .optional(),
        tiling: z
          .object({
            tileSize: z.number().int().min(16).default(128),
            mpp: z.number().positive().default(1.0),
            stride: z.number().int().min(1).optional(),
            minTissue: z.number().min(0).max(1).default(0.5),
          })
          .strict()
          .default({ tileSize: 128, mpp: 1.0, minTissue: 0.5 }),
      })
      .strict(),
    model: z
      .object({
        /**
         * A registry network trained end to end (resnet, mobilenetv2), a frozen ONNX encoder (described, or
         * `{registry: NAME, onnx: PATH}` for a known foundation model), or features imported into the
         * dataset (`{features: NAME}`, from `gradelab dataset import --features`).
         */
        backbone: z.union([z.string(), encoderSpecSchema, importedBackboneSchema, registryBackboneSchema]).default('resnet'),
        width: z.number().positive().default(1),
        inputSize: z.number().int().min(16).max(1024).default(96),
        head: z.enum(['softmax', 'ordinal', 'multitask', 'patterns']).default('softmax'),
        /** Fine-tune from an existing model directory: its backbone, a new head. */
        init: z.string().optional(),
        /** Epochs with the backbone frozen before unfreezing (fine-tuning only). */
        freezeEpochs: z.number().int().min(0).default(1),
        /** Learning-rate factor once the backbone is unfrozen (fine-tuning only). */
        unfreezeLrScale: z.number().positive().default(0.1),
      })
      .strict()
      .default({ backbone: 'resnet', width: 1, inputSize: 96, head: 'softmax', freezeEpochs: 1, unfreezeLrScale: 0.1 }),
    augment: z.array(z.record(z.string(), z.unknown())).default([]),
    train: z
      .object({
        epochs: z.number().int().min(1).default(10),
        batchSize: z.number().int().min(1).default(32),
        optimizer: z.enum(['adamw', 'sgd']).default('adamw'),
        lr: z.number().positive().default(1e-3),
        weightDecay: z.number().min(0).default(1e-4),
        momentum: z.number().min(0).max(1).default(0.9),
        warmupEpochs: z.number().min(0).default(1),
        labelSmoothing: z.number().min(0).max(0.5).default(0),
        classBalanced: z.boolean().default(true),
        gradClip: z.number().positive().optional(),
        /** Stop after this many epochs without a better validation QWK. */
        patience: z.number().int().min(1).default(5),
        /** Model selection: the epoch with the best validation QWK, or the last epoch (small validation sets). */
        select: z.enum(['best', 'last']).default('best'),
        /** Tiles per training epoch (sampled); default: all training tiles. */
        tilesPerEpoch: z.number().int().min(1).optional(),
        /** Validation tiles per slide (evenly chosen), to bound validation time. */
        valTilesPerSlide: z.number().int().min(1).default(16),
        logEvery: z.number().int().min(1).default(10),
        workers: z.number().int().min(0).default(1),
        /** Data-parallel model replicas in worker threads (wasm); auto: one per core. */
        replicas: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default('auto'),
        /** Heads on cached embeddings only: train this many seeds (seed, seed + 1, ...) and report their spread. */
        seeds: z.number().int().min(1).max(50).default(1),
      })
      .strict()
      .default({
        epochs: 10,
        batchSize: 32,
        optimizer: 'adamw',
        lr: 1e-3,
        weightDecay: 1e-4,
        momentum: 0.9,
        warmupEpochs: 1,
        labelSmoothing: 0,
        classBalanced: true,
        patience: 5,
        select: 'best',
        valTilesPerSlide: 16,
        logEvery: 10,
        workers: 1,
        replicas: 'auto',
        seeds: 1,
      }),
    seed: z.number().int().default(1),
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    tracking: z
      .object({ experiment: z.string().default('gradelab'), dir: z.string().optional() })
      .strict()
      .default({ experiment: 'gradelab' }),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

export function parseTrainConfig(raw: unknown, where: string): TrainConfig {
  const r = trainConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${where}: ${zodProblem(r.error)}`, { cause: r.error });
  return r.data;
}

/**
 * Applies `key.path=value` overrides (Hydra/OmegaConf style) to a parsed experiment file; values are read
 * as YAML, so `train.epochs=5`, `train.select=last` and `augment=[]` keep their types. The schema then
 * validates the result, so an override of an unknown key is an error with its path, like a typo in the file.
 */
export function applyOverrides(raw: unknown, sets: readonly string[]): Record<string, unknown> {
  const root = structuredClone((raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>);
  for (const set of sets) {
    const eq = set.indexOf('=');
    const path = eq > 0 ? set.slice(0, eq).split('.') : [];
    if (!path.length || path.some((k) => !/^[A-Za-z_][\w-]*$/.test(k)))
      throw new ConfigError(`--set ${set}: expected key.path=value (e.g. train.epochs=5)`);
    let value: unknown;
    try {
      value = parseYaml(set.slice(eq + 1));
    } catch (err) {
      throw new ConfigError(`--set ${set}: the value is not valid YAML (${(err as Error).message.split('\n')[0]})`, { cause: err });
    }
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next !== undefined && (typeof next !== 'object' || next === null || Array.isArray(next)))
        throw new ConfigError(`--set ${set}: ${key} is not a section`);
      node = (node[key] ??= {}) as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
  }
  return root;
}

export interface ConfigOverrides {
  /** --set key.path=value, in order. */
  sets?: readonly string[];
  /** --data: an existing tile dataset instead of the file's (its synth block no longer applies). */
  dataset?: string;
}

/**
 * Reads, overrides and validates an experiment file. `text` is the effective experiment (the file as
 * written when nothing is overridden), which the model directory keeps so a resume reproduces it.
 */
export function loadTrainConfig(path: string, overrides: ConfigOverrides = {}): { config: TrainConfig; text: string } {
  const { value: raw, text } = loadYamlFile(path, z.unknown(), 'experiment file');
  const sets = [...(overrides.sets ?? [])];
  if (!sets.length && !overrides.dataset) return { config: parseTrainConfig(raw, path), text };
  const effective = applyOverrides(raw, sets);
  if (overrides.dataset) {
    const data = (effective.data ??= {}) as Record<string, unknown>;
    data.dataset = overrides.dataset;
    delete data.synth;
  }
  const config = parseTrainConfig(
    effective,
    `${path} (with ${[...(overrides.dataset ? [`--data ${overrides.dataset}`] : []), ...sets.map((s) => `--set ${s}`)].join(', ')})`,
  );
  const header = `# ${path}${overrides.dataset ? ` --data ${overrides.dataset}` : ''}${sets.map((s) => ` --set ${s}`).join('')}\n`;
  return { config, text: header + stringifyYaml(effective) };
}

/**
 * Everything an experiment names that the schema alone cannot check, checked before any run starts:
 * the backbone is in the model registry, every augmentation step builds (transform names, presets,
 * parameters), a model to fine-tune from exists, and the dataset exists or the file says how to make it.
 * A typo costs one line, never a FAILED run and a half-made model folder.
 */
export function checkExperiment(config: TrainConfig, where: string): void {
  const b = config.model.backbone;
  if (typeof b === 'string' && !modelRegistry.has(b))
    throw new ConfigError(`${where}: model.backbone: unknown model "${b}"; known: ${modelRegistry.names().join(', ')}`);
  if (typeof b === 'object' && 'registry' in b) encoderEntry(b.registry);
  if (config.train.seeds > 1 && typeof b === 'string')
    throw new ConfigError(
      `${where}: train.seeds repeats heads on cached embeddings (seconds each); a ${b} trained end to end takes a run per seed (--seed)`,
    );
  if (config.model.head === 'patterns' && config.train.labelSmoothing > 0)
    throw new ConfigError(
      `${where}: train.labelSmoothing does not apply to the patterns head (its targets are the masks' shares); remove it`,
    );
  if (config.model.head === 'patterns' && config.task !== 'prostate')
    throw new ConfigError(`${where}: model.head patterns is for the prostate task (Gleason patterns)`);
  buildPipeline(config.augment, `${where}: augment`);
  if (config.model.init) readModelMeta(config.model.init);
  const ds = config.data.dataset;
  if (!config.data.synth && !existsSync(join(ds, 'dataset.json')))
    throw new ConfigError(`${where}: data.dataset ${ds} is not a tile dataset (make one with gradelab tile, or give a synth block)`);
}
