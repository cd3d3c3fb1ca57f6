import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  AFFINE_HEAD_FILE,
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
import { tilingOf } from '../data/index.ts';
import { composeEncoderHead, OnnxEncoder } from '../engine/index.ts';
import { contractOf } from '../onnx/index.ts';
import type { Tracker } from '../track/index.ts';
import { fitHeadOnEmbeddings, flattenParams, prepareData, selectBackend, type TrainConfig } from '../train/index.ts';
import { extractEmbeddings } from './embeddings.ts';
import { fmtQwk, writeTrainingCurves } from './trainingCurves.ts';

const fmt = fmtQwk;

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
  if (config.augment.length)
    throw new ConfigError(
      `${config.name}: augment must be empty for a frozen encoder (its embeddings are computed once from the tiles as they are)`,
    );
  if (!existsSync(spec.onnx)) throw new ConfigError(`model.backbone.onnx: ${spec.onnx} not found`);
  const { ds, train, val } = await prepareData(config);
  if (Math.abs(ds.meta.mpp - spec.mpp) > 0.05 * spec.mpp)
    log.warn(`the encoder expects tiles at ${spec.mpp} um/px, ${config.data.dataset} holds tiles at ${ds.meta.mpp}`);
  const { cache, engine } = await extractEmbeddings(ds, spec, { progress });
  const backend = await selectBackend(config.backend);
  const classes = gradeClasses(config.task);
  await tracker.logParams(flattenParams(config));
  await tracker.setTags({
    'gradelab.backend': backend.name,
    'gradelab.engine': engine,
    'gradelab.seed': String(config.seed),
    'gradelab.config.sha256': sha256Text(text),
    'gradelab.dataset.sha256': ds.meta.sha256!,
    'gradelab.manifest.sha256': ds.meta.manifestSha256,
    'gradelab.encoder.sha256': cache.index.encoder.sha256,
    'gradelab.out_dir': out,
    'gradelab.task': config.task,
  });
  const result = await fitHeadOnEmbeddings(
    config,
    { tiles: train, features: cache.read(train) },
    { tiles: val, features: cache.read(val) },
    cache.dim,
    (e) => {
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
    },
  );
  await writeAffineHead(out, result.head);
  const encoder = await OnnxEncoder.open(spec.onnx, spec);
  const fixedBatch = encoder.shape.fixedBatch;
  const best = result.history[result.bestEpoch - 1];
  const meta: ModelMeta = {
    format: 'gradelab-model/1',
    task: config.task,
    head: config.model.head,
    classes,
    backbone: `onnx:${spec.onnx.split('/').pop()}`,
    width: 1,
    inputSize: spec.inputSize,
    tileSize: ds.meta.tileSize,
    mpp: ds.meta.mpp,
    tiling: tilingOf(ds.meta),
    inputNormalisation: { mean: spec.mean, std: spec.std },
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
    encoder: { ...spec, sha256: cache.index.encoder.sha256, ...(fixedBatch ? { fixedBatch } : {}) },
  };
  await writeModelMeta(out, meta);
  try {
    await writeFileAtomic(modelFile(out, 'onnx'), composeEncoderHead(spec.onnx, encoder.shape, spec, result.head, contractOf(meta)));
  } finally {
    await encoder.close();
  }
  await writeTrainingHistory(out, result.history);
  await writeTrainingCurves(out, config.name, result.history);
  return `best validation QWK ${fmt(result.bestQwk)} at epoch ${result.bestEpoch} (head on ${spec.onnx}, ${cache.dim} features)`;
}
