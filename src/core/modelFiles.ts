import { join } from 'node:path';

/**
 * What a model directory holds, by name: every module that reads or writes one of these files takes its
 * name from here, and each file has one reader with a schema beside its writer (gradelab.json in
 * modelMeta.ts, history.json in trainingHistory.ts, the checkpoint in train/fitStages.ts, mil.json in
 * train/mil.ts, ood/ in ood/store.ts, calibration/ in workflows/calibrate.ts, config.yaml through the
 * experiment schema).
 */
export const MODEL_FILES = {
  /** What every later step needs to use the model (modelMetaSchema). */
  meta: 'gradelab.json',
  /** The experiment as it ran, overrides included (its SHA-256 is the config hash). */
  config: 'config.yaml',
  /** One entry per epoch, counted from 1. */
  history: 'history.json',
  /** Weights, optimiser and loop state of the last finished epoch, for --resume. */
  checkpoint: 'checkpoint',
  checkpointState: 'checkpoint/state.json',
  /** The best epoch's network as ONNX: what every engine runs. */
  onnx: 'model.onnx',
  /** The best epoch's network in TF.js layers format. */
  layers: 'model.json',
  weights: 'weights.bin',
  /** An attention-MIL slide head fitted on the model's features. */
  mil: 'mil.json',
  /** The fitted OOD detectors and their arrays. */
  ood: 'ood',
  oodBundle: 'ood/detectors.json',
  curves: 'training-curves.png',
  /** Temperature scaling's fit: figures before and after, reliability diagrams (gradelab calibrate). */
  calibration: 'calibration',
  /** A head trained with several seeds: each seed's scores and their spread (workflows/headSeeds.ts). */
  seeds: 'seeds.json',
} as const;

export type ModelFile = keyof typeof MODEL_FILES;

/** The path of one of a model directory's files. */
export function modelFile(dir: string, file: ModelFile): string {
  return join(dir, ...MODEL_FILES[file].split('/'));
}
