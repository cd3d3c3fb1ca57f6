import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  AFFINE_HEAD_FILE,
  type AffineHead,
  ConfigError,
  type EncoderSpec,
  gradeClasses,
  log,
  modelFile,
  type ModelMeta,
  type ProgressFactory,
  sha256File,
  sha256Text,
  writeAffineHead,
  writeFileAtomic,
  writeModelMeta,
  writeTrainingHistory,
} from '../core/index.ts';
import { importedFeatureSets, tilingOf, type EmbeddingCache, type TileDataset, type TileRow } from '../data/index.ts';
import { composeEncoderHead, OnnxEncoder } from '../engine/index.ts';
import { contractOf } from '../onnx/index.ts';
import type { Tracker } from '../track/index.ts';
import { fitHeadOnEmbeddings, flattenParams, prepareData, selectBackend, trainingScope, type TrainConfig } from '../train/index.ts';
import { extractEmbeddings } from './embeddings.ts';
import { headGrading, multiSeedHeads } from './headSeeds.ts';
import { fmtQwk, writeTrainingCurves } from './trainingCurves.ts';

const fmt = fmtQwk;

/** Where a head's features come from, and what the model records of it. */
interface HeadSource {
  cache: EmbeddingCache;
  engine: string;
  /** The backbone as gradelab.json names it, and as the run's summary names it. */
  backbone: string;
  label: string;
  inputSize: number;
  normalisation: { mean: number[]; std: number[] };
  record: Pick<ModelMeta, 'encoder' | 'importedFeatures'>;
  /** Writes model.onnx where the features can be computed from pixels. */
  writeOnnx?: (meta: ModelMeta, head: AffineHead) => Promise<void>;
}

/**
 * A head on a frozen ONNX encoder: the encoder embeds every tile of the dataset once (cached beside it),
 * the head trains on the embeddings in seconds, and model.onnx joins encoder and head into one graph.
 */
export async function trainHeadOnEncoder(
  config: TrainConfig,
  spec: EncoderSpec,
  out: string,
  tracker: Tracker,
  text: string,
  progress?: ProgressFactory,
): Promise<string> {
  checkNoAugment(config);
  if (!existsSync(spec.onnx)) throw new ConfigError(`model.backbone.onnx: ${spec.onnx} not found`);
  const data = await prepareData(config);
  const { ds } = data;
  if (Math.abs(ds.meta.mpp - spec.mpp) > 0.05 * spec.mpp)
    log.warn(`the encoder expects tiles at ${spec.mpp} um/px, ${config.data.dataset} holds tiles at ${ds.meta.mpp}`);
  const { cache, engine } = await extractEmbeddings(ds, spec, { progress });
  return fitAndSaveHead(config, data, out, tracker, text, {
    cache,
    engine,
    backbone: `onnx:${spec.onnx.split('/').pop()}`,
    label: spec.onnx,
    inputSize: spec.inputSize,
    normalisation: { mean: spec.mean, std: spec.std },
    record: { encoder: { ...spec, sha256: cache.index.encoder.sha256 } },
    writeOnnx: async (meta, head) => {
      const encoder = await OnnxEncoder.open(spec.onnx, spec);
      try {
        if (encoder.shape.fixedBatch) meta.encoder!.fixedBatch = encoder.shape.fixedBatch;
        await writeModelMeta(out, meta);
        await writeFileAtomic(modelFile(out, 'onnx'), composeEncoderHead(spec.onnx, encoder.shape, spec, head, contractOf(meta)));
      } finally {
        await encoder.close();
      }
    },
  });
}

/**
 * A head on features imported from CLAM or TRIDENT (`gradelab dataset import --features`): it trains as a
 * head on an ONNX encoder does, and the model scores any dataset that holds the same features. There is
 * no model.onnx (gradelab cannot compute those features from pixels), so pixel-only work (robustness
 * suites, heatmaps of new slides) refuses it with a line.
 */
export async function trainHeadOnImported(config: TrainConfig, name: string, out: string, tracker: Tracker, text: string): Promise<string> {
  checkNoAugment(config);
  const data = await prepareData(config);
  const sets = importedFeatureSets(data.ds);
  const found = sets.get(name);
  if (!found)
    throw new ConfigError(
      `model.backbone.features: ${config.data.dataset} holds no imported features "${name}" (${sets.size ? `it has: ${[...sets.keys()].join(', ')}` : 'import them with `gradelab dataset import ... --features DIR`'})`,
    );
  const { cache, imported } = found;
  return fitAndSaveHead(config, data, out, tracker, text, {
    cache,
    engine: `imported ${imported.tool} features`,
    backbone: `${imported.tool}:${imported.name}`,
    label: `${imported.tool} features "${imported.name}"`,
    inputSize: data.ds.meta.tileSize,
    normalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
    record: { importedFeatures: imported },
  });
}

function checkNoAugment(config: TrainConfig): void {
  if (config.augment.length)
    throw new ConfigError(
      `${config.name}: augment must be empty for a frozen encoder (its embeddings are computed once from the tiles as they are)`,
    );
}

async function fitAndSaveHead(
  config: TrainConfig,
  { ds, train, val, test }: { ds: TileDataset; train: TileRow[]; val: TileRow[]; test: TileRow[] },
  out: string,
  tracker: Tracker,
  text: string,
  source: HeadSource,
): Promise<string> {
  const { cache } = source;
  const backend = await selectBackend(config.backend);
  const classes = gradeClasses(config.task);
  await tracker.logParams(flattenParams(config));
  await tracker.setTags({
    'gradelab.backend': backend.name,
    'gradelab.engine': source.engine,
    'gradelab.seed': String(config.seed),
    'gradelab.config.sha256': sha256Text(text),
    'gradelab.dataset.sha256': ds.meta.sha256!,
    'gradelab.manifest.sha256': ds.meta.manifestSha256,
    'gradelab.encoder.sha256': cache.index.encoder.sha256,
    'gradelab.out_dir': out,
    'gradelab.task': config.task,
  });
  // Read from the cache once: every seed of a multi-seed run fits on the same arrays.
  const trainSet = { tiles: train, features: cache.read(train) };
  const valSet = { tiles: val, features: cache.read(val) };
  const result = await fitHeadOnEmbeddings(config, trainSet, valSet, cache.dim, (e) => {
    log.info(
      `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(3)}, val QWK ${fmt(e.valQwk)} (slides), ${fmt(e.valTileQwk)} (tiles)${e.best ? ' *best' : ''}`,
    );
    void tracker.logMetrics(
      {
        'train/loss_epoch': e.trainLoss,
        ...(e.valQwk !== null ? { 'val/qwk': e.valQwk } : {}),
        ...(e.valTileQwk !== null ? { 'val/tile_qwk': e.valTileQwk } : {}),
      },
      e.epoch + 1,
    );
  });
  await writeAffineHead(out, result.head);
  const best = result.history[result.bestEpoch - 1];
  const patternGrading = headGrading(result.head, config, valSet);
  const meta: ModelMeta = {
    format: 'gradelab-model/1',
    task: config.task,
    head: config.model.head,
    classes,
    backbone: source.backbone,
    width: 1,
    inputSize: source.inputSize,
    tileSize: ds.meta.tileSize,
    mpp: ds.meta.mpp,
    tiling: tilingOf(ds.meta),
    inputNormalisation: source.normalisation,
    dataset: relative(out, ds.dir) || '.',
    augment: [],
    normaliser: null,
    seed: config.seed,
    backend: backend.name,
    runId: tracker.runId,
    datasetHash: ds.meta.sha256!,
    configHash: sha256Text(text),
    bestEpoch: result.bestEpoch,
    metrics: { 'val/qwk': result.bestQwk, 'val/tile_qwk': best.valTileQwk, trainLoss: best.trainLoss },
    trainedAt: new Date().toISOString(),
    weightsSha256: await sha256File(join(out, AFFINE_HEAD_FILE)),
    featureDim: cache.dim,
    scope: trainingScope(ds, [...train, ...val]),
    ...(patternGrading ? { patternGrading } : {}),
    ...source.record,
  };
  await writeModelMeta(out, meta);
  await source.writeOnnx?.(meta, result.head);
  await writeTrainingHistory(out, result.history);
  await writeTrainingCurves(out, config.name, result.history);
  const seeds =
    config.train.seeds > 1
      ? `; ${await multiSeedHeads(config, { trainSet, valSet, test }, cache, { ...result, grading: patternGrading }, out)}`
      : '';
  return `best validation QWK ${fmt(result.bestQwk)} at epoch ${result.bestEpoch} (head on ${source.label}, ${cache.dim} features)${seeds}`;
}
